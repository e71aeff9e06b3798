"""automl: hyperparameter optimization for TAO-style training jobs."""
