"""``python -m examharness.cli``: the same as the ``examharness`` command."""

from examharness.cli import entry

entry()
