"""``python -m examharness.cli``: the same as the ``examharness`` command."""

import sys

from examharness.cli import main

sys.exit(main())
