"""`callmon`, and `python -m monitor`: `monitor.cli` imported with the cyclic garbage collector
paused.

Start-up allocates a great deal and frees almost nothing, so collections during it are a tenth
of the start-up time wasted. The command turns collection back on (`monitor.cli.common.started`):
at once, or for `run` once it is running, after freezing what start-up made (later collections
need not walk the imported modules and the config again).
"""

from __future__ import annotations

import gc
import signal
import sys


def _stop(signum: int, frame: object) -> None:
    sys.exit(0)


def main() -> int:
    """Entry point of the `callmon` console script."""
    # SIGTERM before the daemon installs its own handling (while it imports, reads its config,
    # opens its store) stops it as cleanly: exit 0.
    signal.signal(signal.SIGTERM, _stop)
    gc.disable()
    from monitor.cli import main as command

    return command()


if __name__ == "__main__":
    sys.exit(main())
