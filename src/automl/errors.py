"""User-facing errors.

Every mistake a user can make (bad flag, bad file, bad key) is raised as :class:`UserError`.
The CLI turns it into one line on stderr and exit code 2, with no traceback, before anything
is launched. Keep messages to one line that names the offending key/file and says how to fix it.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class UserError(Exception):
    """A mistake in the user's input; printed as one line, exit code 2."""

    exit_code = 2

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(message.split()))


def did_you_mean(word: str, candidates: Iterable[str]) -> str:
    """A ' (did you mean X?)' suffix for an unknown key, or '' when nothing is close."""
    matches = difflib.get_close_matches(word, list(candidates), n=1, cutoff=0.6)
    return f" (did you mean '{matches[0]}'?)" if matches else ""
