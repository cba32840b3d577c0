"""Fail when requirements.lock does not pin every dependency pyproject.toml declares (extras included).

Run from the repository root: ``python .ci/check_lock.py``. After changing a dependency, regenerate the lock
as docs/deploy.md says and run this again.
"""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s\\;]+)", re.MULTILINE)


def declared(pyproject: Path) -> list[Requirement]:
    project = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]
    texts = list(project["dependencies"])
    for extra in project.get("optional-dependencies", {}).values():
        texts += extra
    return [Requirement(text) for text in texts]


def pinned(lock: Path) -> dict[str, Version]:
    return {canonicalize_name(name): Version(version) for name, version in PIN.findall(lock.read_text("utf-8"))}


def problems(pyproject: Path, lock: Path) -> list[str]:
    pins = pinned(lock)
    found = []
    for requirement in declared(pyproject):
        version = pins.get(canonicalize_name(requirement.name))
        if version is None:
            found.append(f"{requirement} is declared in {pyproject.name} but missing from {lock.name}")
        elif not requirement.specifier.contains(version, prereleases=True):
            found.append(f"{requirement} is declared in {pyproject.name} but {lock.name} pins {version}")
    return found


def main() -> int:
    root = Path(__file__).resolve().parent.parent
    found = problems(root / "pyproject.toml", root / "requirements.lock")
    for problem in found:
        print(problem, file=sys.stderr)
    if found:
        print("requirements.lock is out of date; regenerate it as docs/deploy.md (Reproducible installs) says",
              file=sys.stderr)
        return 1
    print("requirements.lock pins every dependency of pyproject.toml")
    return 0


if __name__ == "__main__":
    sys.exit(main())
