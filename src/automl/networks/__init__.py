"""Network profiles: one per TAO network, derived from its skill folder (see :mod:`.profile`).

``EXTRAS`` maps a ``network_arch`` to what its skill folder cannot say (a dataset check, hand-off
rules): adding a network with such needs is one module and one line here. Every other network
runs on what its folder and :mod:`.catalog` state.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from automl.networks import segformer
from automl.networks.catalog import FACTS, default_direction
from automl.networks.profile import ActionKeys, Input, NetworkExtras, NetworkProfile, action_keys

if TYPE_CHECKING:
    from automl.skill.folder import SkillDir

EXTRAS: dict[str, NetworkExtras] = {
    "segformer": segformer.EXTRAS,
}


def profile_for(skill: SkillDir) -> NetworkProfile:
    """The profile of a loaded skill folder."""
    info = skill.info
    arch = skill.network_arch
    extras = EXTRAS.get(arch, NetworkExtras())
    actions = {}
    for action in map(str, info.get("actions") or {}):
        keys = action_keys(info, action)
        if not keys.inputs and extras.fallback_inputs:
            keys = ActionKeys(_fallback(skill, action, extras.fallback_inputs), keys.roles)
        actions[action] = keys
    return NetworkProfile(network_arch=arch, facts=FACTS.get(arch), actions=actions,
                          gpu_spec_key=info.get("gpu_spec_key"), shorthand=skill.shorthand(),
                          extras=extras)


def _fallback(skill: SkillDir, action: str, inputs: tuple[Input, ...]) -> dict[str, Input]:
    """An older skill folder's inputs: the network's usual ones that its template holds."""
    from automl.errors import UserError
    from automl.skill.spec import get_dotted

    try:
        template = skill.template(action)
    except UserError:  # an action without a template has nothing to fill
        return {}
    return {i.key: i for i in inputs if get_dotted(template, i.key, None) is not None}


__all__ = ["EXTRAS", "Input", "NetworkProfile", "default_direction", "profile_for"]
