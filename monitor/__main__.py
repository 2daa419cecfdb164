"""`python -m monitor` is the `callmon` command."""

import sys

from monitor.command import main

sys.exit(main())
