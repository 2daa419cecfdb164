"""`python -m monitor` is the `callmon` command."""

import sys

from monitor.cli import main

sys.exit(main())
