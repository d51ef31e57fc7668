"""Shared fixtures: the default (synthetic) study, writable copies of it, and corrupted copies."""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from helpers.config import PROJECT_ROOT
from helpers.data.load import load_study

DATA_DIR = PROJECT_ROOT / "data"
DATA_FILES = ("cohort.csv", "adverse_events.csv", "treatment_cycles.csv", "study.yaml")
#: A small public cohort (R's survival::veteran) with only cohort.csv, study.yaml and dictionary.yaml
VETERAN_DIR = PROJECT_ROOT / "tests" / "fixtures" / "veteran"
#: Fixtures that build the whole supplement: a test that uses one is slow (make check)
SLOW_FIXTURES = {"built_output", "other_build", "second_build", "veteran_build"}


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: end-to-end builds and notebook executions (make check, "
                                       "pytest -m slow); make test runs the others")


def pytest_collection_modifyitems(config, items):
    """Mark slow every test that uses a fixture building the whole supplement."""
    for item in items:
        if SLOW_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)


@pytest.fixture(scope="session")
def study():
    """The shipped synthetic study, loaded and validated once per test session."""
    return load_study(DATA_DIR)


@pytest.fixture(scope="session")
def patients(study):
    return study.patients


@pytest.fixture
def data_copy(tmp_path) -> Path:
    """A writable copy of the default data folder (the four data files only)."""
    folder = tmp_path / "cohort"
    folder.mkdir()
    for name in DATA_FILES:
        shutil.copy(DATA_DIR / name, folder / name)
    return folder


def edit_csv(path: Path, edit) -> None:
    """Apply ``edit(frame)`` to a CSV read as text (comment lines dropped) and write it back."""
    import io

    import pandas as pd

    lines = [line for line in path.read_text(encoding="utf-8").splitlines(keepends=True) if not line.startswith("#")]
    frame = pd.read_csv(io.StringIO("".join(lines)), dtype=str, keep_default_na=False)
    frame = edit(frame)
    path.write_text(frame.to_csv(index=False, lineterminator="\n"), encoding="utf-8")


@pytest.fixture(scope="session")
def built_output(tmp_path_factory):
    """The whole pipeline (validate, execute every notebook, render) run once on the default data.

    Returns the output folder; tests read results.json, executed notebooks and the rendered files from it.
    """
    from helpers.build.pipeline import build_report

    from helpers.build.render import STRICT_ENV

    out = tmp_path_factory.mktemp("build") / "_output"
    saved = os.environ.get(STRICT_ENV)
    os.environ[STRICT_ENV] = "1"   # every value the prose quotes must exist for the shipped cohort
    try:
        build_report(DATA_DIR, out, use_cache=False, render=True, progress=lambda message: None)
    finally:
        if saved is None:
            os.environ.pop(STRICT_ENV, None)
        else:
            os.environ[STRICT_ENV] = saved
    return out
