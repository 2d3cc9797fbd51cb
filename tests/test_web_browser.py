"""The playground in a real browser: headless Chromium (Debian's) driven by Playwright
against a live ``matcalc serve`` on a free loopback port.

On CI (``CI=true``) a missing browser or Playwright is a failure with the reason, never a
silent skip; ``.ci/run`` installs Chromium from Debian's packages. A screenshot of the page
is written to ``build/test-artifacts/web-playground.png``.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import matcalc
from matcalc.web.service import derivation

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "build" / "test-artifacts"
ON_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
LEAST_SQUARES = "||A x - b||_2^2"


def _unavailable(reason: str):
    """Fail on CI (the browser test must run there), skip elsewhere."""
    if ON_CI:
        pytest.fail(f"the browser test cannot run on CI: {reason}", pytrace=False)
    pytest.skip(reason)


def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    return None


@pytest.fixture(scope="module")
def server():
    """A live ``matcalc serve --port 0`` subprocess; yields its address."""
    for module in ("starlette", "uvicorn"):
        try:
            __import__(module)
        except ImportError:
            _unavailable(f"{module} is not installed (pip install -e '.[test]')")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p))
    proc = subprocess.Popen(
        [sys.executable, "-m", "matcalc", "serve", "--port", "0"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        line = proc.stdout.readline() if proc.stdout else ""
        match = re.search(r"http://127\.0\.0\.1:\d+/", line)
        if not match:
            proc.kill()
            _, err = proc.communicate(timeout=10)
            pytest.fail(f"matcalc serve did not print its address: {line!r} {err}")
        yield match.group(0)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    assert proc.returncode in (0, -15), proc.stderr.read() if proc.stderr else ""


@pytest.fixture(scope="module")
def browser():
    try:
        from playwright.sync_api import Error, sync_playwright
    except ImportError:
        _unavailable("Playwright is not installed (pip install -e '.[test]')")
    executable = _chromium()
    if executable is None:
        _unavailable("no Chromium found; apt-get install chromium (.ci/run does)")
    with sync_playwright() as p:
        try:
            browser = p.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS,
                                        headless=True, timeout=30_000)
        except Error as err:
            _unavailable(f"Chromium ({executable}) did not start: {err}")
        yield browser
        browser.close()


@pytest.fixture
def page(browser, server):
    context = browser.new_context(viewport={"width": 1100, "height": 900})
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=server[:-1])
    page = context.new_page()
    page.set_default_timeout(15_000)
    errors: list[str] = []
    page.on("pageerror", lambda err: errors.append(str(err)))
    # a rejected formula (422) is logged by the browser; anything else is a bug of the page
    page.on("console", lambda msg: errors.append(msg.text)
            if msg.type == "error" and "status of 422" not in msg.text else None)
    page.goto(server)
    page.wait_for_selector("body[data-ready='true']")
    yield page
    context.close()
    assert not errors, errors


def _derive(page, formula: str, wrt: str | None = None) -> None:
    page.fill("#formula", formula)
    if wrt is not None:
        page.wait_for_selector(f"#wrt option[value='{wrt}']", state="attached")
        page.select_option("#wrt", wrt)
    page.click("#derive")


def _compact(latex: str) -> str:
    return re.sub(r"\\left|\\right|\s+", "", latex)


def test_least_squares_is_typeset(page) -> None:
    _derive(page, LEAST_SQUARES, "x")
    page.wait_for_selector("#result .katex")
    annotation = page.text_content("#result annotation[encoding='application/x-tex']")
    assert "=2A^{\\top}(Ax-b)" in _compact(annotation)
    shown = page.inner_text("#result")
    assert "\\" not in shown and "top" not in shown  # typeset, not raw LaTeX
    assert page.locator("#result .katex-html").is_visible()
    assert page.is_hidden("#error")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.click("#derivation summary")
    page.screenshot(path=str(ARTIFACTS / "web-playground.png"), full_page=True)


def test_derivation_opens_with_every_step_typeset(page) -> None:
    _derive(page, LEAST_SQUARES, "x")
    page.wait_for_selector("#result .katex")
    steps = page.locator("#steps li")
    assert not steps.first.is_visible()
    page.click("#derivation summary")
    count = steps.count()
    assert count == len(derivation(matcalc.grad(LEAST_SQUARES, "x"))["lines"])
    assert steps.first.is_visible()
    assert page.locator("#steps li .eq .katex").count() == count
    assert "\\" not in page.inner_text("#steps")


def test_copy_numpy_code(page) -> None:
    _derive(page, LEAST_SQUARES, "x")
    page.wait_for_selector("#result .katex")
    page.click("#tab-numpy")
    page.click("#copy")
    page.wait_for_selector("#copy:text-is('Copied')")
    copied = page.evaluate("navigator.clipboard.readText()")
    assert copied == matcalc.grad(LEAST_SQUARES, "x").to_source("numpy")
    assert copied.startswith("import numpy as np") and "def f(*, A, b, x)" in copied


def test_error_has_a_caret_under_the_position(page) -> None:
    page.fill("#formula", "||x||_")
    page.press("#formula", "Enter")
    page.wait_for_selector("#error:not([hidden])")
    source, caret = page.text_content("#error .caret").split("\n")
    assert source == "||x||_"
    assert caret == "     ^"  # under the sixth character, the dangling '_'
    assert "ParseError" in page.text_content("#error .message")
    assert page.text_content("#error .hint").startswith("hint: ")
    assert page.get_attribute("#formula", "aria-invalid") == "true"


def test_claim_check_names_the_mistake(page) -> None:
    _derive(page, "x^T A x", "x")
    page.wait_for_selector("#result .katex")
    page.fill("#claim", "2 A x")
    page.press("#claim", "Enter")
    page.wait_for_selector("#claim-verdict.bad")
    assert "symmetric only" in page.text_content("#claim-verdict")
    page.fill("#claim", "(A + A^T) x")
    page.click("#claim-form button")
    page.wait_for_selector("#claim-verdict.good")
    assert page.text_content("#claim-verdict").startswith("✓ correct")


def test_permalink_restores_the_result(page, server) -> None:
    page.fill("#where", "A: symmetric")
    _derive(page, "x^T A x", "x")
    page.wait_for_url(re.compile(r"[?&]where="))
    link = page.get_attribute("#permalink", "href")
    assert link.startswith("/?f=")
    fresh = page.context.new_page()
    fresh.goto(server.rstrip("/") + link)
    fresh.wait_for_selector("#result .katex")
    assert fresh.input_value("#formula") == "x^T A x"
    assert fresh.input_value("#where") == "A: symmetric"
    assert fresh.input_value("#wrt") == "x"
    annotation = fresh.text_content("#result annotation[encoding='application/x-tex']")
    assert _compact(annotation).endswith("=2Ax")
    fresh.close()


def test_keyboard_alone(page) -> None:
    """Formula, Enter to derive, tabs with the arrow keys, copy with Enter."""
    page.focus("#formula")
    page.keyboard.type(LEAST_SQUARES)
    page.wait_for_selector("#wrt option[value='x']", state="attached")
    page.keyboard.press("Enter")
    page.wait_for_selector("#result .katex")
    page.focus("#tab-latex")
    page.keyboard.press("ArrowRight")
    assert page.get_attribute("#tab-numpy", "aria-selected") == "true"
    assert page.evaluate("document.activeElement.id") == "tab-numpy"
    page.keyboard.press("End")
    assert page.get_attribute("#tab-torch", "aria-selected") == "true"
    assert "import torch" in page.text_content("#code")


def test_enter_right_after_typing_derives(page) -> None:
    """Enter before the variable menu is filled: the menu is read first, x is chosen."""
    page.focus("#formula")
    page.keyboard.type("x^T A x")
    page.keyboard.press("Enter")
    page.wait_for_selector("#result .katex")
    assert page.input_value("#wrt") == "x"
    assert page.is_hidden("#error")


def test_gallery_example_fills_the_form(page) -> None:
    page.click("#gallery-sections button:has-text('softmax(x)')")
    page.wait_for_selector("#result .katex")
    assert page.input_value("#formula") == "softmax(x)"
    assert page.input_value("#op") == "jacobian"
    expected = matcalc.jacobian("softmax(x)", "x").latex()
    assert page.get_attribute("#result", "data-latex") == expected
    assert page.evaluate("document.activeElement.id") == "answer-title"  # keyboard goes on


def test_phone_sized_screen_does_not_scroll_sideways(browser, server) -> None:
    context = browser.new_context(viewport={"width": 375, "height": 740}, is_mobile=True)
    page = context.new_page()
    page.goto(server + "?f=" + "%7C%7CA%20x%20-%20b%7C%7C_2%5E2&op=grad&wrt=x")
    page.wait_for_selector("#result .katex")
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 375
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "web-playground-phone.png"), full_page=False)
    context.close()

