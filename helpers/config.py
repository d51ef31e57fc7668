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


#: The project's default analysis plan (generic); a data folder's ``analysis.yaml`` is merged over it.
ANALYSIS_PATH = PROJECT_ROOT / "analysis.yaml"


def deep_merge(base: dict, override: dict) -> dict:
    """A new dict: ``base`` with ``override`` merged in (nested dicts merged key by key; other values,
    lists included, replaced)."""
    out = dict(base)
    for key, value in (override or {}).items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def load_plan(data_dir: Path | str | None = None) -> dict:
    """The analysis plan: the project ``analysis.yaml`` deep-merged with ``data_dir/analysis.yaml``.

    Parameters
    ----------
    data_dir : the data folder (default: :func:`data_dir`); its ``analysis.yaml`` is optional.

    Returns
    -------
    dict with one key per section (``seed``, ``workers``, ``cohort``, ``baseline``, ``survival``, ...);
    a new dict on every call, so a notebook may change a choice inline.
    """
    import copy

    import yaml

    def read(path: Path) -> dict:
        if not path.exists():
            return {}
        try:
            parsed = yaml.safe_load(path.read_text(encoding="utf-8"))
        except yaml.YAMLError as exc:
            raise ValueError(f"{path}: not valid YAML: {exc}") from None
        if parsed is None:
            return {}
        if not isinstance(parsed, dict):
            raise ValueError(f"{path}: must be a mapping of sections (seed, survival, ...)")
        return parsed

    folder = Path(data_dir) if data_dir is not None else globals()["data_dir"]()
    plan = read(ANALYSIS_PATH)
    if folder.resolve() != PROJECT_ROOT.resolve():   # the project plan is not merged over itself
        plan = deep_merge(plan, read(folder / "analysis.yaml"))
    return copy.deepcopy(plan)
