"""The minimum versions pyproject.toml declares are the ones CI's second run installs
(.ci/minimum.txt), so the floors are proven, not guessed."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FLOORED = ("torch", "transformers", "timm", "PySide6-Essentials")


def _floors() -> dict[str, str]:
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    out = {}
    for dep in deps:
        m = re.match(r"^([A-Za-z0-9_.-]+)\s*>=\s*([0-9][0-9.]*)", dep)
        if m:
            out[m.group(1)] = m.group(2)
    return out


def _pins() -> dict[str, str]:
    pins = {}
    for line in (ROOT / ".ci" / "minimum.txt").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, version = line.split("==")
            pins[name.strip()] = version.strip()
    return pins


def test_declared_floors_are_the_versions_ci_tests():
    floors, pins = _floors(), _pins()
    for name in FLOORED:
        assert name in floors, f"{name} has no declared minimum in pyproject.toml"
        assert floors[name] == pins[name] or pins[name].startswith(floors[name] + ".0"), (name, floors[name], pins[name])


def test_ci_runs_the_minimum_versions():
    script = (ROOT / ".ci" / "run").read_text()
    assert "-c .ci/minimum.txt" in script and "pytest" in script.split("minimum.txt")[-1]
