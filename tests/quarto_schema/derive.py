"""Derive the Quarto option keys the project may use from quarto-cli's schema (MIT licence).

Run by hand when Quarto's schema changes: ``python tests/quarto_schema/derive.py PATH/TO/schema``
(a copy of quarto-cli's ``src/resources/schema/``). Writes ``allowed_keys.json`` beside this file:
the tests read that file only, never anything outside the repository.

* ``document``: every front-matter/format option (``document-*.yml``), with its aliases, and the
  formats it is restricted to (``tags.formats``; ``[]`` for all formats);
* ``cell``: every cell option (``cell-*.yml``), with the same format tags;
* ``project``: the keys of ``project:`` (``project.yml``), ``manuscript:`` (``definitions.yml``,
  ``manuscript-schema``), ``execute:`` (the document-execute options) and ``crossref:``;
* ``notebook-view``: the keys of an entry of ``manuscript: notebooks:``.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent


def _entries(files) -> dict[str, list[str]]:
    keys: dict[str, list[str]] = {}
    for path in sorted(files):
        for entry in yaml.safe_load(path.read_text(encoding="utf-8")) or []:
            if not isinstance(entry, dict) or "name" not in entry:
                continue
            formats = sorted(str(f) for f in ((entry.get("tags") or {}).get("formats") or []))
            for name in [entry["name"], *([entry["alias"]] if entry.get("alias") else [])]:
                keys[str(name)] = formats
    return keys


def _properties(node) -> list[str]:
    """Property names of the first ``object: properties:`` found in a schema node."""
    if isinstance(node, dict):
        if "properties" in node and isinstance(node["properties"], dict):
            return sorted(str(k) for k in node["properties"])
        for value in node.values():
            found = _properties(value)
            if found:
                return found
    if isinstance(node, list):
        for value in node:
            found = _properties(value)
            if found:
                return found
    return []


def derive(schema: Path) -> dict:
    definitions = {d["id"]: d for d in yaml.safe_load((schema / "definitions.yml").read_text()) if "id" in d}
    project = {e["name"]: e for e in yaml.safe_load((schema / "project.yml").read_text())}
    crossref = next(e for e in yaml.safe_load((schema / "document-crossref.yml").read_text())
                    if e["name"] == "crossref")
    return {
        "source": "quarto-cli src/resources/schema (MIT)",
        "document": _entries(schema.glob("document-*.yml")),
        "cell": _entries(schema.glob("cell-*.yml")),
        "project": sorted(set(_properties(project["project"]))),
        "manuscript": _properties(definitions["manuscript-schema"]),
        "notebook-view": _properties(definitions.get("notebook-view-schema", {})),
        "crossref": _properties(crossref),
        "top-level-project": sorted(project),
    }


if __name__ == "__main__":
    target = HERE / "allowed_keys.json"
    target.write_text(json.dumps(derive(Path(sys.argv[1])), indent=1, sort_keys=True) + "\n", encoding="utf-8")
    print(f"wrote {target}")
