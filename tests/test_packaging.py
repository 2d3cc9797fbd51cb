"""The wheel ships the grammar and rule files inside the package and the ``matcalc`` script."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent



def _data_files(folder: str) -> list[str]:
    """Files of a top-level data folder, as the wheel should hold them under ``matcalc/``."""
    base = ROOT / folder
    return sorted(
        f"matcalc/{folder}/{p.relative_to(base).as_posix()}"
        for p in base.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts
    )


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Build the wheel with the build backend directly (no network, no build isolation)."""
    out = tmp_path_factory.mktemp("dist")
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from hatchling.build import build_wheel; print(build_wheel(sys.argv[1]))",
            str(out),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    return out / proc.stdout.strip().splitlines()[-1]


def test_wheel_contains_grammar_and_rules(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "matcalc/grammar/matcalc.lark" in names
    assert "matcalc/__init__.py" in names
    assert "matcalc/cli.py" in names
    assert "matcalc/__main__.py" in names
    rules = _data_files("rules")
    assert rules, "the rules folder is empty"
    assert set(rules) <= names
    assert set(_data_files("grammar")) <= names


def test_wheel_declares_the_matcalc_script(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as zf:
        entry_points = next(n for n in zf.namelist() if n.endswith(".dist-info/entry_points.txt"))
        text = zf.read(entry_points).decode()
    assert "matcalc = matcalc.cli:main" in text


def test_unpacked_wheel_parses_outside_the_checkout(wheel: Path, tmp_path: Path) -> None:
    """The grammar is found inside the installed package, not in a source checkout."""
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    env = dict(os.environ, PYTHONPATH=str(site))
    proc = subprocess.run(
        [sys.executable, "-m", "matcalc", "parse", "x^T A x where A: symmetric", "-f", "latex"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "x^{\\top} A x\n"
    where = subprocess.run(
        [sys.executable, "-c", "import importlib as i; print(i.import_module('matcalc.data')"
         ".data_path('grammar'))"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert Path(where.stdout.strip()) == site / "matcalc" / "grammar"
