"""Ray Tune trial schedulers of the bracket family, with promotion by resume (see :mod:`.base`)."""

from automl.brackets.asha import PromotionASHA
from automl.brackets.base import BracketScheduler, BracketSearcher, Job, Proposer, Slot
from automl.brackets.budgets import BracketPlan, checkpoint_interval, epochs_of, hyperband_brackets, rung_ladder
from automl.brackets.hyperband import HyperbandScheduler

__all__ = ["BracketPlan", "BracketScheduler", "BracketSearcher", "HyperbandScheduler", "Job",
           "PromotionASHA", "Proposer", "Slot", "checkpoint_interval", "epochs_of",
           "hyperband_brackets", "rung_ladder"]
