"""How the engine uses Ray and Ray Tune beyond their public API: starting and joining Ray
(``ray_address``, pre-started workers), Tune's experiment state (when it is saved, and saved
whole), the private Ray APIs the engine relies on (``ray_private``, checked against the installed
version) and the usage tags it turns off. The engine's own logic is in :mod:`automl.run`."""
