"""``python -m harness.reliability``: see ``harness.reliability.run``."""

import sys

from harness.reliability.run import main

sys.exit(main())
