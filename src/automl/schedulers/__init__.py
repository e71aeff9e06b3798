"""Ray Tune trial schedulers of the bracket family, with promotion by resume (see :mod:`.base`)."""

from automl.schedulers.asha import PromotionASHA
from automl.schedulers.base import BracketScheduler, BracketSearcher, Job, Proposer, Slot
from automl.schedulers.budgets import (BracketPlan, checkpoint_interval, epochs_of,
                                       hyperband_brackets, rung_ladder)
from automl.schedulers.hyperband import HyperbandScheduler

__all__ = ["BracketPlan", "BracketScheduler", "BracketSearcher", "HyperbandScheduler", "Job",
           "PromotionASHA", "Proposer", "Slot", "checkpoint_interval", "epochs_of",
           "hyperband_brackets", "rung_ladder"]
