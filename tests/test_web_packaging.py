"""The wheel ships the playground: page, gallery, vendored KaTeX with its licence, web extra."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
WEB = ROOT / "matcalc" / "web"

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("hatchling") is None,
    reason="the build backend hatchling is not installed (building offline needs it)",
)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> zipfile.ZipFile:
    out = tmp_path_factory.mktemp("dist")
    proc = subprocess.run(
        [sys.executable, "-c",
         "import sys; from hatchling.build import build_wheel; print(build_wheel(sys.argv[1]))",
         str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    return zipfile.ZipFile(out / proc.stdout.strip().splitlines()[-1])


def test_wheel_holds_every_playground_file(wheel: zipfile.ZipFile) -> None:
    names = set(wheel.namelist())
    expected = {
        p.relative_to(ROOT).as_posix()
        for p in WEB.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts
    }
    assert "matcalc/web/static/katex/katex.min.js" in expected
    assert "matcalc/web/static/katex/LICENSE" in expected
    assert "matcalc/web/gallery.json" in expected
    assert sum(n.endswith(".woff2") for n in expected) == 20
    assert expected <= names, sorted(expected - names)


def test_wheel_declares_the_web_extra(wheel: zipfile.ZipFile) -> None:
    metadata = next(n for n in wheel.namelist() if n.endswith(".dist-info/METADATA"))
    text = wheel.read(metadata).decode()
    assert "Provides-Extra: web" in text
    for requirement in ("starlette", "uvicorn"):
        assert any(line.startswith(f"Requires-Dist: {requirement}") and "extra == 'web'" in line
                   for line in text.splitlines()), requirement


def test_katex_licence_is_the_mit_licence() -> None:
    assert (WEB / "static" / "katex" / "LICENSE").read_text().startswith("The MIT License")
