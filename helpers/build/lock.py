"""Regenerate ``requirements.txt``, the lock file of the direct dependencies in ``pyproject.toml``.

``python -m helpers.build.lock`` (``make lock``) asks pip to resolve ``.[test]`` without installing
anything (``pip install --dry-run --report``), constrained to the versions already pinned, and writes
one ``name==version`` line per package to install. ``--upgrade`` resolves without the constraints
(the newest versions the package index offers).
"""
from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path

from helpers.config import PROJECT_ROOT

LOCK = PROJECT_ROOT / "requirements.txt"
HEADER = """\
# Lock file: the exact version of every package the project installs, generated from the direct
# dependencies declared in pyproject.toml ([project] dependencies and the "test" extra). Do not edit
# by hand: after a change of pyproject.toml run `make lock` (python -m helpers.build.lock), which
# keeps the versions already pinned; `python -m helpers.build.lock --upgrade` takes the newest ones.
"""


def _pins(lock: Path) -> list[str]:
    if not lock.exists():
        return []
    return [line.strip() for line in lock.read_text(encoding="utf-8").splitlines()
            if line.strip() and not line.startswith("#")]


def resolve(upgrade: bool = False, lock: Path = LOCK) -> list[tuple[str, str]]:
    """(name, version) of every package pip would install for ``.[test]``, sorted by name."""
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "report.json"
        command = [sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed", "--quiet",
                   "--report", str(report), "-e", f"{PROJECT_ROOT}[test]"]
        if not upgrade and _pins(lock):
            constraints = Path(tmp) / "constraints.txt"
            constraints.write_text("\n".join(_pins(lock)) + "\n", encoding="utf-8")
            command += ["-c", str(constraints)]
        subprocess.run(command, check=True)
        installed = json.loads(report.read_text(encoding="utf-8"))["install"]
    spelled = {re.sub(r"[-_.]+", "-", pin.split("==")[0]).lower(): pin.split("==")[0] for pin in _pins(lock)}
    pins = []
    for item in installed:
        name, version = item["metadata"]["name"], item["metadata"]["version"]
        if name == "ecl-supplement":
            continue
        pins.append((spelled.get(re.sub(r"[-_.]+", "-", name).lower(), name), version))
    return sorted(pins, key=lambda pin: pin[0].lower())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Regenerate requirements.txt from pyproject.toml.")
    parser.add_argument("--upgrade", action="store_true", help="newest versions instead of the pinned ones")
    args = parser.parse_args(argv)
    pins = resolve(args.upgrade)
    LOCK.write_text(HEADER + "".join(f"{name}=={version}\n" for name, version in pins), encoding="utf-8")
    print(f"wrote {LOCK} ({len(pins)} packages)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
