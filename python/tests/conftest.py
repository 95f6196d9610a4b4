"""pytest setup: puts python/ on sys.path so ``import moe_mlir`` works from
any directory, and reports the largest errors the comparisons measured."""

import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

# comparison name -> largest relative L2 error seen (filled by the tests).
MAX_ERRORS = {}


def record_error(kind, value):
    MAX_ERRORS[kind] = max(MAX_ERRORS.get(kind, 0.0), float(value))


def pytest_terminal_summary(terminalreporter):
    if MAX_ERRORS:
        terminalreporter.write_line("max relative L2 errors:")
        for kind in sorted(MAX_ERRORS):
            terminalreporter.write_line(f"  {kind}: {MAX_ERRORS[kind]:.3e}")
