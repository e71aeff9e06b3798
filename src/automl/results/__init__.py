"""What an experiment leaves: workspace, trial records, best, failures, retention."""
