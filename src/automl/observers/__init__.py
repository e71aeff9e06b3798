"""Who watches an experiment: the progress display and MLflow tracking."""
