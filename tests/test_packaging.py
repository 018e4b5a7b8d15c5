"""Every data file inside the package is shipped by package-data (a wheel or image install has it)."""

from __future__ import annotations

import tomllib
from pathlib import Path, PurePosixPath

ROOT = Path(__file__).resolve().parent.parent


def test_every_package_data_file_is_declared() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    patterns = config["tool"]["setuptools"]["package-data"]["cardsvc"]
    package = ROOT / "cardsvc"
    data_files = [p for p in package.rglob("*") if p.is_file() and p.suffix not in {".py", ".pyc"}
                  and "__pycache__" not in p.parts]
    assert data_files, "expected some data files (migrations template, demo data)"
    undeclared = [
        str(p.relative_to(package)) for p in data_files
        if not any(PurePosixPath(p.relative_to(package).as_posix()).match(pat.removeprefix("**/"))
                   or p.name == pat for pat in patterns)
    ]
    assert not undeclared, f"add to [tool.setuptools.package-data]: {undeclared}"
