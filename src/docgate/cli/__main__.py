"""`python -m docgate.cli`: the `docgate` command (how `serve --workers N` starts a worker)."""

import sys

from docgate.cli import main

sys.exit(main())
