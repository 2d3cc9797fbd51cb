"""`matcalc serve`: its options, its loopback default, and its message without the web extra."""

from __future__ import annotations

import os
import re
import shlex
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from matcalc.cli import build_parser

ROOT = Path(__file__).resolve().parent.parent


def test_serve_defaults_to_this_machine_only() -> None:
    args = build_parser().parse_args(["serve"])
    assert (args.host, args.port, args.open) == ("127.0.0.1", 8000, False)
    args = build_parser().parse_args(["serve", "--host", "0.0.0.0", "--port", "0", "--open"])
    assert (args.host, args.port, args.open) == ("0.0.0.0", 0, True)


def test_serve_without_the_web_extra_says_what_to_install() -> None:
    code = ("import sys; sys.modules['uvicorn'] = None; from matcalc.cli import main;"
            " sys.exit(main(['serve', '--port', '0']))")
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert "needs the web extra" in proc.stderr
    assert 'pip install "matcalc-symbolic[web]"' in proc.stderr
    assert "Traceback" not in proc.stderr


def test_loopback_names() -> None:
    pytest.importorskip("uvicorn", reason="the web extra is not installed")
    from matcalc.web.server import is_loopback

    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.4")


def test_serve_on_a_port_in_use_says_so() -> None:
    pytest.importorskip("uvicorn", reason="the web extra is not installed")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        proc = subprocess.run([sys.executable, "-m", "matcalc", "serve", "--port", str(port)],
                              cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert f"cannot listen on 127.0.0.1 port {port}" in proc.stderr
    assert "--port" in proc.stderr and "Traceback" not in proc.stderr


def test_serve_prints_its_address_and_opens_the_browser(tmp_path: Path) -> None:
    """--open hands the printed address to the browser ($BROWSER here: a script noting it)."""
    pytest.importorskip("uvicorn", reason="the web extra is not installed")
    opened = tmp_path / "opened.txt"
    note = f"import sys, pathlib; pathlib.Path({str(opened)!r}).write_text(sys.argv[1])"
    env = dict(os.environ, PYTHONPATH=str(ROOT),
               BROWSER=f"{shlex.quote(sys.executable)} -c {shlex.quote(note)} %s")
    proc = subprocess.Popen([sys.executable, "-m", "matcalc", "serve", "--port", "0", "--open"],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline() if proc.stdout else ""
        match = re.match(r"matcalc playground: (http://127\.0\.0\.1:\d+/)", line)
        assert match, line
        deadline = time.monotonic() + 30
        while not opened.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert opened.read_text() == match.group(1)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
