"""Every number the prose quotes refers to a results key declared in helpers/report/keys.py."""
from __future__ import annotations

import pytest

from helpers.config import PROJECT_ROOT
from helpers.report import keys

PROSE_FILES = sorted([PROJECT_ROOT / "report.qmd", *(PROJECT_ROOT / "sections").glob("*.qmd")])


@pytest.mark.parametrize("path", PROSE_FILES, ids=lambda path: path.name)
def test_every_quoted_results_key_is_declared(path):
    undeclared = keys.undeclared(path.read_text(encoding="utf-8"))
    assert not undeclared, f"{path.name} quotes keys not declared in helpers/report/keys.py: {undeclared}"


def test_the_prose_quotes_at_least_one_key():
    assert any(keys.quoted_keys(path.read_text(encoding="utf-8")) for path in PROSE_FILES)


def test_an_arm_pattern_matches_every_arm_code_and_nothing_else():
    assert keys.is_declared("os.text.median_CMT")
    assert keys.is_declared("os.text.median_CMT_ICI")
    assert keys.is_declared("os.text.median_standard")
    assert not keys.is_declared("os.text.median_")
    assert not keys.is_declared("os.text.no_such_key")


def test_every_declared_key_is_a_dotted_path_with_a_description():
    for key, description in keys.KEYS.items():
        assert key.count(".") >= 1 and " " not in key, key
        assert description.strip(), key


def test_no_key_is_declared_in_two_blocks():
    seen: dict[str, str] = {}
    for name, block in keys.BLOCKS.items():
        for key in block:
            assert key not in seen, f"{key} is declared in {seen[key]} and {name}"
            seen[key] = name
