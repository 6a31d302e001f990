"""docs/security.md and docs/reliability.md name the tests that prove each promise: those tests exist.

A reference is `tests/x/test_y.py` (the file exists), `tests/x/test_y.py::test_z` or a following bare
`::test_z` (a test of that name is defined in the file named last before it).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
REF = re.compile(r"(tests/[\w/]+\.py)?::(test_\w+)|(tests/[\w/]+\.py)")


@pytest.mark.parametrize("doc", ["docs/security.md", "docs/reliability.md"])
def test_named_tests_exist(doc):
    text = (ROOT / doc).read_text()
    current = None
    checked = 0
    missing = []
    for m in REF.finditer(text):
        path = m[1] or m[3]
        if path:
            current = path
            if not (ROOT / path).is_file():
                missing.append(path)
                continue
        if path and not m[2]:
            checked += 1
        if m[2]:
            if current is None:
                missing.append(f"::{m[2]} (no file before it)")
                continue
            source = (ROOT / current).read_text() if (ROOT / current).is_file() else ""
            if not re.search(rf"^(async )?def {m[2]}\b|^    def {m[2]}\b", source, re.M):
                missing.append(f"{current}::{m[2]}")
        checked += 1
    assert not missing, missing
    assert checked >= 10, checked
