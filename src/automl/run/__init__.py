"""Running an experiment: the engine, one trial, the Tune callback, Tune persistence."""
