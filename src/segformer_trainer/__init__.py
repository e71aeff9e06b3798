"""Bundled SegFormer trainer honouring the TAO container's CLI contract.

``automl-segformer train|evaluate|inference|export -e spec.yaml [key=value ...]`` (TAO's
``segformer <action>`` arguments; the console script has its own name so that TAO's ``segformer``
is never shadowed), TAO's spec shape, status.json (JSON Lines) and checkpoint names;
``automl-segformer dataset synth`` makes a synthetic dataset and ``automl-segformer skill`` writes
the skill folder (TAO layout) generated from the config.

Importing this package is cheap: torch and transformers are imported only inside the actions
that need them. The package is standalone (it does not import ``automl``).
"""

__version__ = "0.1.0"
