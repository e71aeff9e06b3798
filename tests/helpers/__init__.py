"""What several test modules share, by job (fixtures themselves stay in ``conftest.py``).

* :mod:`tests.helpers.skills`: the fake trainer's skill folder, the real TAO skills in
  ``../shared/tao``, the ``segformer`` shim for them.
* :mod:`tests.helpers.experiments`: small finished experiments on the fake trainer.
* :mod:`tests.helpers.processes`: run the CLI in a subprocess, wait for a kill point, kill it.
"""
