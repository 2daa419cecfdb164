"""The `callmon` console script: `monitor.cli` imported with the cyclic garbage collector paused.

Start-up allocates a great deal and frees almost nothing, so collections during it are a tenth
of the start-up time wasted. The command turns collection back on (`monitor.cli.common.started`):
at once, or for `run` once it is running, after freezing what start-up made (later collections
need not walk the imported modules and the config again).
"""

from __future__ import annotations

import gc


def main() -> int:
    """Entry point of the `callmon` console script."""
    gc.disable()
    from monitor.cli import main as command

    return command()
