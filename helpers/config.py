"""Project paths and the single seed constant.

Notebooks find their input and output folders here, so that `make report DATA=...` (which sets the
environment variables below) and a notebook opened by hand in JupyterLab read the same data.
"""
from __future__ import annotations

import os
from pathlib import Path

#: The one seed of the project; everything that samples receives it explicitly.
SEED = 20260115

PROJECT_ROOT = Path(__file__).resolve().parents[1]
DATA_ENV = "SUPPLEMENT_DATA"
OUTPUT_ENV = "SUPPLEMENT_OUTPUT"
#: Environment variable: counts from 1 to its value minus one are shown as "<value"
#: (helpers.report.formatting.suppression_threshold; off when unset or 0).
SUPPRESS_ENV = "SUPPLEMENT_SUPPRESS_BELOW"


def data_dir() -> Path:
    """Folder of the cohort to analyse: ``$SUPPLEMENT_DATA`` or the shipped ``data/``."""
    return Path(os.environ.get(DATA_ENV) or PROJECT_ROOT / "data").resolve()


def output_dir() -> Path:
    """Folder the analyses write to: ``$SUPPLEMENT_OUTPUT`` or ``_output/``."""
    return Path(os.environ.get(OUTPUT_ENV) or PROJECT_ROOT / "_output").resolve()
