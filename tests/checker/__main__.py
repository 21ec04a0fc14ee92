"""python3 -m checker HISTORY.json: see checker.report.main."""

import sys

from .report import main

sys.exit(main())
