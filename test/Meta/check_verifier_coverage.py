#!/usr/bin/env python3
"""Fails when a diagnostic in the dialect verifiers has no negative test.

Python: the `python3` on PATH (standard library only). Usage:
check_verifier_coverage.py SRC_ROOT. Every message emitted from
lib/Dialect/*/IR/*.cpp (the text of its first string literal, up to the
first value streamed into it) must occur in an `expected-error` of some
test under test/.
"""
import pathlib
import re
import sys

root = pathlib.Path(sys.argv[1])
emit = re.compile(r'emit(?:Op)?Error\(\)\s*(?:<<\s*)?"((?:[^"\\]|\\.)*)"', re.S)
sources = sorted((root / "lib" / "Dialect").glob("*/IR/*.cpp"))
messages = {}
for src in sources:
    text = src.read_text()
    for m in emit.finditer(text):
        fragment = m.group(1).encode().decode("unicode_escape")
        line = text.count("\n", 0, m.start()) + 1
        messages.setdefault(fragment, f"{src.relative_to(root)}:{line}")

expected = []
for test in (root / "test").rglob("*.mlir"):
    expected += re.findall(r"expected-(?:error|warning|remark)[^{]*\{\{(.*?)\}\}",
                           test.read_text())

missing = [(where, msg) for msg, where in messages.items()
           if not any(msg in e for e in expected)]
print(f"{len(messages)} verifier messages, {len(messages) - len(missing)} tested")
for where, msg in sorted(missing):
    print(f"untested verifier message at {where}: \"{msg}\"")
sys.exit(1 if missing or not messages else 0)
