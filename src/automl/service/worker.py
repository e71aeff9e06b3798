"""The child process that runs one experiment for the server: ``automl run`` / ``automl resume``
(the CLI's own machinery, unchanged) that dies with the server.

``PR_SET_PDEATHSIG`` makes the kernel SIGKILL this process when the server's runner thread dies,
however the server dies (``kill -9`` included): the run is then exactly a controller killed
outright, which ``automl resume`` continues (it stops the trainers the dead run left). Without
it an orphaned run would hold its workspace lock and the restarted server could not resume it.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys

PR_SET_PDEATHSIG = 1


def main() -> int:
    parent = int(sys.argv[1])
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:  # the server died before prctl took effect
        return 1
    # Upward (service/ → cli.py): a worker *is* `automl run|resume` in a child process.
    from automl.cli import main as cli_main

    return cli_main(sys.argv[2:])


if __name__ == "__main__":
    sys.exit(main())
