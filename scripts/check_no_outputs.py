"""Refuse to commit executed notebooks or outputs (they may hold results of real, non-public data).

Checks every ``.ipynb`` given (or found under the folders given; default ``notebooks/``): no code cell may
carry outputs or an execution count, and the notebook must not be an executed copy (metadata key
``supplement_cache_key`` written by helpers.build.execute). Any path inside an output or staging folder
(``_output/``, ``._output.staging/``, ...) is refused as well. Exit status 1 lists every offending file.

Usage::

    python scripts/check_no_outputs.py [PATH ...]

As a pre-commit hook (checks the staged files): ``git config core.hooksPath .githooks``
(see ``.githooks/pre-commit``).
"""
from __future__ import annotations

import json
import re
import sys
from pathlib import Path

CACHE_KEY = "supplement_cache_key"
OUTPUT_PART = re.compile(r"^\.?_output(\..*)?$|\.staging$|^\.render-")


def notebook_problems(path: Path) -> list[str]:
    """Reasons why ``path`` must not be committed (empty when it is fine)."""
    if any(OUTPUT_PART.search(part) for part in path.parts[:-1]):
        return ["lies in an output folder (outputs are never committed)"]
    if path.suffix != ".ipynb":
        return []
    try:
        nb = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        return [f"cannot be read as a notebook: {exc}"]
    problems = []
    if CACHE_KEY in nb.get("metadata", {}):
        problems.append("is an executed copy made by helpers.build.execute")
    for number, cell in enumerate(nb.get("cells", []), 1):
        if cell.get("cell_type") != "code":
            continue
        if cell.get("outputs"):
            problems.append(f"cell {number} has outputs")
        if cell.get("execution_count") is not None:
            problems.append(f"cell {number} has an execution count")
    return problems


def paths_to_check(arguments: list[str]) -> list[Path]:
    paths = []
    for argument in arguments or ["notebooks"]:
        path = Path(argument)
        paths += sorted(path.rglob("*.ipynb")) if path.is_dir() else [path]
    return [p for p in paths if p.exists()]


def main(argv: list[str] | None = None) -> int:
    failures = {str(p): notebook_problems(p) for p in paths_to_check(sys.argv[1:] if argv is None else argv)}
    failures = {p: reasons for p, reasons in failures.items() if reasons}
    for path, reasons in failures.items():
        print(f"{path}: {'; '.join(reasons)}", file=sys.stderr)
    if failures:
        print("Clear the outputs before committing (Jupyter: Edit > Clear Outputs of All Cells; or "
              "`jupyter nbconvert --clear-output --inplace FILE`).", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
