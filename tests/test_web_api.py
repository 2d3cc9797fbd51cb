"""The playground's JSON API through Starlette's test client: answers, errors and limits."""

from __future__ import annotations

import io
import json
import re
import sys
import threading
import time
import warnings
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("starlette", reason="the web extra is not installed")
pytest.importorskip("httpx", reason="Starlette's test client needs httpx")

from starlette.exceptions import StarletteDeprecationWarning  # noqa: E402

import matcalc  # noqa: E402
from matcalc.web.app import STATIC, create_app  # noqa: E402
from matcalc.web.pool import Limits  # noqa: E402
from matcalc.web.service import MAX_REQUEST_BYTES  # noqa: E402

with warnings.catch_warnings():  # Starlette 1.x prefers httpx2; httpx (the test extra) works
    warnings.simplefilter("ignore", StarletteDeprecationWarning)
    from starlette.testclient import TestClient  # noqa: E402

TABLE = json.loads((Path(__file__).parent / "data" / "gradients.json").read_text("utf-8"))
GALLERY = json.loads((STATIC.parent / "gallery.json").read_text("utf-8"))

# Twenty stacked tanh layers (twenty distinct dimensions, sizes up to 22): the entrywise
# check of this gradient takes about ten seconds, far beyond the one-second limit of the
# `strict` app below (its derivation takes 0.1 s).
_LAYERS = "x"
for _i in range(1, 21):
    _LAYERS = f"tanh(W{_i} {_LAYERS})"
SLOW_CHECK = {
    "formula": f"||W21 {_LAYERS} - y||^2",
    "op": "grad",
    "wrt": "W1",
    "options": {"check": True},
}


@pytest.fixture(scope="module")
def client():
    with TestClient(create_app(Limits(workers=2, timeout=30))) as c:
        yield c


@pytest.fixture(scope="module")
def strict():
    """An app whose derivations may take one second (to exercise the time limit)."""
    with TestClient(create_app(Limits(workers=1, timeout=1.0))) as c:
        yield c


def derive(client: TestClient, **body):
    return client.post("/api/derive", json=body)


def assert_still_serving(client: TestClient) -> None:
    reply = derive(client, formula="x^T x", wrt="x")
    assert reply.status_code == 200
    assert reply.json()["result"]["text"] == "2 x"


# ------------------------------------------------------------------ answers


@pytest.mark.parametrize("row", TABLE, ids=[f"{r['f']} d{r['wrt']}" for r in TABLE])
def test_gradient_table_round_trips(client: TestClient, row: dict) -> None:
    decls = row.get("decls", {})
    reply = derive(client, formula=row["f"], op="grad", wrt=row["wrt"], decls=decls)
    try:
        expected = matcalc.grad(row["f"], row["wrt"], **decls)
    except matcalc.MatcalcError as err:
        assert reply.status_code == 422
        assert reply.json()["error"]["message"] == err.message
        return
    assert reply.status_code == 200, reply.text
    data = reply.json()
    assert data["result"]["text"] == str(expected)
    assert data["result"]["latex"] == expected.latex()
    assert data["result"]["shape"] == [str(d) if not isinstance(d, int) else d
                                       for d in expected.shape]
    assert data["code"]["numpy"] == expected.to_source("numpy")


def test_least_squares_answer_has_every_part(client: TestClient) -> None:
    reply = derive(client, formula="||A x - b||_2^2", op="grad", wrt="x",
                   options={"check": True})
    assert reply.status_code == 200
    data = reply.json()
    assert data["result"]["text"] == "2 A^T (A x - b)"
    assert data["result"]["kind"] == "vector"
    assert data["formula"]["kind"] == "scalar"
    assert {v["name"]: v["declaration"] for v in data["variables"]} == {
        "A": "matrix(n, m)", "b": "vector(n)", "x": "vector(m)"}
    assert data["check"]["ok"] is True
    lines = data["derivation"]["lines"]
    assert lines and all(line["latex"] for line in lines)
    rules = [rule for line in lines for rule in line["rules"]]
    assert rules and all(rule["name"] and rule["source"] for rule in rules)
    assert lines[0]["latex"].startswith("f = ")  # the chain starts from the function...
    assert lines[-1]["latex"].endswith(" = " + data["result"]["latex"])  # ...ends in the result
    assert data["derivation"]["latex"].startswith("\\begin{align*}")
    assert set(data["code"]) >= {"latex", "numpy", "jax", "torch"}
    assert "import jax" in data["code"]["jax"] and "import torch" in data["code"]["torch"]


def test_generated_numpy_code_computes_the_gradient(client: TestClient) -> None:
    """The code the page offers is runnable and agrees with a finite difference."""
    data = derive(client, formula="||A x - b||_2^2", wrt="x").json()
    namespace: dict = {}
    exec(compile(data["code"]["numpy"], "<generated>", "exec"), namespace)  # noqa: S102
    rng = np.random.default_rng(0)
    A, b, x = rng.normal(size=(4, 3)), rng.normal(size=4), rng.normal(size=3)
    grad = namespace["f"](A=A, b=b, x=x)
    f = lambda v: np.sum((A @ v - b) ** 2)  # noqa: E731
    h = 1e-6
    numeric = [(f(x + h * e) - f(x - h * e)) / (2 * h) for e in np.eye(3)]
    assert np.allclose(grad, numeric, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("op, formula, wrt, expected", [
    ("jacobian", "A x", "x", "A"),
    ("hessian", "x^T A x", "x", "A + A^T"),
    ("derivative", "A X B", "X", "B^T ⊗ A"),
    ("differential", "X^-1", "X", "-X^-1 dX X^-1"),
])
def test_every_operation(client: TestClient, op: str, formula: str, wrt: str,
                         expected: str) -> None:
    reply = derive(client, formula=formula, op=op, wrt=wrt)
    assert reply.status_code == 200, reply.text
    assert reply.json()["result"]["text"] == expected


def test_latex_input_gives_the_same_answer(client: TestClient) -> None:
    text = derive(client, formula="||A x - b||_2^2", wrt="x").json()["result"]
    latex = derive(client, formula=r"\left\| A x - b \right\|_2^2", wrt="x").json()["result"]
    assert latex == text


def test_denominator_layout_is_the_transpose(client: TestClient) -> None:
    reply = derive(client, formula="A x", op="jacobian", wrt="x",
                   options={"layout": "denominator"})
    assert reply.json()["result"]["text"] == "A^T"


def test_where_field_and_decls_declare_kinds(client: TestClient) -> None:
    by_where = derive(client, formula="x^T A x", wrt="x", where="A: symmetric").json()
    by_decls = derive(client, formula="x^T A x", wrt="x", decls={"A": "symmetric"}).json()
    assert by_where["result"]["text"] == by_decls["result"]["text"] == "2 A x"


def test_parse_lists_variables_with_kinds_and_shapes(client: TestClient) -> None:
    reply = client.post("/api/parse", json={"formula": "x^T A x where A: symmetric"})
    assert reply.status_code == 200
    variables = reply.json()["variables"]
    assert [(v["name"], v["kind"], v["shape"]) for v in variables] == [
        ("A", "matrix", ["n", "n"]), ("x", "vector", ["n", 1])]
    assert variables[0]["declaration"] == "symmetric matrix(n, n)"


def test_claim_check_accepts_the_textbook_answer(client: TestClient) -> None:
    reply = derive(client, formula="||A x - b||_2^2", wrt="x",
                   options={"claim": "2 A^T (A x - b)"})
    assert reply.status_code == 200
    claim = reply.json()["claim"]
    assert claim["ok"] is True and claim["report"].startswith("correct")


def test_claim_check_names_the_mistake(client: TestClient) -> None:
    """2 A x is the gradient of x^T A x only for a symmetric A."""
    claim = derive(client, formula="x^T A x", wrt="x", options={"claim": "2 A x"}).json()["claim"]
    assert claim["ok"] is False
    assert [d["name"] for d in claim["diagnoses"]] == ["symmetric only"]
    example = claim["counterexample"]
    A, x = (np.array(example["values"][k]) for k in ("A", "x"))
    i, j = example["entry"]
    assert (2 * A @ x)[i - 1] == example["claimed"]  # the counterexample reproduces
    assert ((A + A.T) @ x)[i - 1] == example["expected"] != example["claimed"]


def test_unreadable_claim_is_reported_beside_the_result(client: TestClient) -> None:
    reply = derive(client, formula="||A x - b||_2^2", wrt="x",
                   options={"claim": "2 A^T (A x - b"})
    assert reply.status_code == 200
    data = reply.json()
    assert data["result"]["text"] == "2 A^T (A x - b)"
    assert data["claim"]["error"]["type"] == "ParseError"
    assert data["claim"]["error"]["source_line"] == "2 A^T (A x - b"


def test_claim_about_a_differential_is_a_400(client: TestClient) -> None:
    reply = derive(client, formula="X^-1", op="differential", wrt="X",
                   options={"claim": "-X^-1 dX X^-1"})
    assert reply.status_code == 400


@pytest.mark.parametrize("section", GALLERY["sections"], ids=lambda s: s["title"])
def test_every_gallery_example_derives(client: TestClient, section: dict) -> None:
    for example in section["examples"]:
        reply = derive(client, formula=example["formula"], where=example.get("where", ""),
                       op=example["op"], wrt=example["wrt"])
        assert reply.status_code == 200, (example, reply.text)


# ------------------------------------------------------------------ errors


def test_formula_error_has_position_and_hint(client: TestClient) -> None:
    reply = derive(client, formula="||x||_", wrt="x")
    assert reply.status_code == 422
    error = reply.json()["error"]
    assert error["type"] == "ParseError"
    assert (error["line"], error["column"]) == (1, 6)
    assert error["source_line"] == "||x||_"
    assert error["hint"]


def test_shape_error_is_a_422(client: TestClient) -> None:
    reply = derive(client, formula="x^T y where x: vector(n), y: vector(m)", wrt="x")
    assert reply.status_code == 422
    assert reply.json()["error"]["type"] == "ShapeError"


def test_malformed_json_is_a_400(client: TestClient) -> None:
    reply = client.post("/api/derive", content=b'{"formula": "x^T x", ',
                        headers={"Content-Type": "application/json"})
    assert reply.status_code == 400
    error = reply.json()["error"]
    assert error["type"] == "MalformedJSON" and "not valid JSON" in error["message"]
    assert_still_serving(client)


def test_deeply_nested_json_is_a_400(client: TestClient) -> None:
    reply = client.post("/api/derive", content=b"[" * 4000 + b"]" * 4000,
                        headers={"Content-Type": "application/json"})
    assert reply.status_code == 400
    assert reply.json()["error"]["type"] == "MalformedJSON"


@pytest.mark.parametrize("body, words", [
    ([1, 2], "JSON object"),
    ({"op": "grad", "wrt": "x"}, "'formula' is missing"),
    ({"formula": 3, "wrt": "x"}, "must be a string"),
    ({"formula": "x^T x"}, "'wrt' is missing"),
    ({"formula": "x^T x", "wrt": "x", "colour": "red"}, "unknown field 'colour'"),
    ({"formula": "x^T x", "wrt": "x", "options": {"layout": "diagonal"}}, "unknown layout"),
    ({"formula": "x^T x", "wrt": "x", "options": {"check": "yes"}}, "true or false"),
    ({"formula": "  ", "wrt": "x"}, "empty"),
    ({"formula": "x^T x", "wrt": " "}, "'wrt' is empty"),
])
def test_malformed_requests_are_400(client: TestClient, body: object, words: str) -> None:
    reply = client.post("/api/derive", json=body)
    assert reply.status_code == 400
    assert words in reply.json()["error"]["message"]


def test_unknown_op_is_a_400(client: TestClient) -> None:
    reply = derive(client, formula="x^T x", op="curl", wrt="x")
    assert reply.status_code == 400
    error = reply.json()["error"]
    assert error["message"] == "unknown op 'curl'"
    assert "gradient" not in error["hint"] and "grad" in error["hint"]
    assert_still_serving(client)


def test_oversize_request_is_a_413(client: TestClient) -> None:
    reply = derive(client, formula="x + " * (MAX_REQUEST_BYTES // 4) + "x", wrt="x")
    assert reply.status_code == 413
    assert "10000 bytes" in reply.json()["error"]["message"]
    assert_still_serving(client)


def test_oversize_streamed_request_is_a_413(client: TestClient) -> None:
    """Without a Content-Length the body is still cut off at the cap."""
    def chunks():
        yield b'{"formula": "'
        for _ in range(50):
            yield b"x + " * 100
        yield b'x", "wrt": "x"}'

    reply = client.post("/api/derive", content=chunks(),
                        headers={"Content-Type": "application/json"})
    assert reply.status_code == 413


def test_request_that_is_not_json_is_a_415(client: TestClient) -> None:
    reply = client.post("/api/derive", content=b"formula=x", headers={
        "Content-Type": "application/x-www-form-urlencoded"})
    assert reply.status_code == 415


def test_wrong_method_and_unknown_path_answer_json(client: TestClient) -> None:
    assert client.get("/api/derive").status_code == 405
    reply = client.post("/api/integrate", json={})
    assert reply.status_code == 404 and reply.json()["error"]["type"] == "NotFound"


def test_slow_derivation_times_out_and_the_server_keeps_serving(strict: TestClient) -> None:
    pool = strict.app.state.pool
    reply = strict.post("/api/derive", json=SLOW_CHECK)
    assert reply.status_code == 422
    error = reply.json()["error"]
    assert error["type"] == "TimeLimitExceeded" and "1 s" in error["message"]
    assert pool.replaced == 1
    assert_still_serving(strict)  # the killed worker was replaced


def test_busy_server_answers_503_then_recovers() -> None:
    """With every worker held by a slow derivation, a request waits queue_wait, then 503."""
    with TestClient(create_app(Limits(workers=1, timeout=2.0, queue_wait=0.3))) as busy:
        slow = threading.Thread(target=busy.post, args=("/api/derive",),
                                kwargs={"json": SLOW_CHECK})
        slow.start()
        time.sleep(0.5)
        reply = derive(busy, formula="x^T x", wrt="x")
        slow.join()
        assert reply.status_code == 503
        assert reply.json()["error"]["type"] == "ServerBusy"
        pool = busy.app.state.pool
        deadline = time.monotonic() + 60
        while pool.idle() < 1 and time.monotonic() < deadline:  # the timed-out worker's heir
            time.sleep(0.1)
        assert_still_serving(busy)


def test_workers_run_under_a_memory_cap(client: TestClient) -> None:
    pool = client.app.state.pool
    for pid in pool.pids():
        limits = Path(f"/proc/{pid}/limits").read_text()
        line = next(ln for ln in limits.splitlines() if ln.startswith("Max address space"))
        assert int(line.split()[3]) == pool.limits.memory_mb * 1024 * 1024


def test_worker_out_of_memory_answers_and_retires(monkeypatch: pytest.MonkeyPatch) -> None:
    """A MemoryError under the cap becomes a 422 answer, and the worker asks to be replaced."""
    from matcalc.web import service, worker

    def exhausted(job: str, request: dict) -> tuple[int, dict]:
        raise MemoryError

    monkeypatch.setattr(service, "run", exhausted)
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(
        b'{"job": "derive", "request": {}}\n{"job": "derive", "request": {}}\n')))
    channel = io.BytesIO()
    assert worker.serve_forever(channel) == 1
    ready, answer = (json.loads(line) for line in channel.getvalue().splitlines())
    assert ready["ready"] is True
    assert answer["status"] == 422 and answer["retire"] is True
    assert answer["body"]["error"]["type"] == "MemoryLimitExceeded"


# ------------------------------------------------------------------ the page and its assets


def test_page_and_vendored_katex_are_served(client: TestClient) -> None:
    page = client.get("/")
    assert page.status_code == 200 and "<textarea id=\"formula\"" in page.text
    assert "cdn" not in page.text.lower()
    for asset in ("/static/app.js", "/static/app.css", "/static/katex/katex.min.js",
                  "/static/katex/katex.min.css", "/static/katex/LICENSE"):
        assert client.get(asset).status_code == 200, asset


def test_info_names_operations_and_limits(client: TestClient) -> None:
    info = client.get("/api/info").json()
    assert info["version"] == matcalc.__version__
    assert set(info["operations"]) == {"grad", "jacobian", "hessian", "derivative",
                                       "differential"}
    assert info["limits"]["request_bytes"] == MAX_REQUEST_BYTES == 10_000


def test_page_forbids_scripts_from_elsewhere(client: TestClient) -> None:
    policy = client.get("/").headers["content-security-policy"]
    assert "default-src 'self'" in policy and "script-src" not in policy  # 'self' only
    assert client.get("/api/info").headers["x-content-type-options"] == "nosniff"


def test_every_font_katex_asks_for_first_is_vendored(client: TestClient) -> None:
    css = client.get("/static/katex/katex.min.css").text
    fonts = set(re.findall(r"url\((fonts/[^)]+\.woff2)\)", css))
    assert len(fonts) >= 20
    for font in fonts:
        assert client.get(f"/static/katex/{font}").status_code == 200, font


def test_static_files_stay_inside_the_static_folder(client: TestClient) -> None:
    assert client.get("/static/../app.py").status_code == 404
    assert client.get("/static/%2e%2e/app.py").status_code == 404


def test_other_host_names_are_refused_on_loopback() -> None:
    app = create_app(Limits(workers=1), allowed_hosts=["127.0.0.1", "localhost"])
    with TestClient(app, base_url="http://evil.example") as c:
        assert c.get("/").status_code == 400


def test_rule_sources_come_with_their_formulas_typeset(client: TestClient) -> None:
    """A source that quotes a formula in backticks reaches the page as prose and LaTeX
    parts, so the page never shows raw backticks."""
    reply = derive(client, formula="1^T exp(x)", wrt="x", options={"derivation": True})
    rules = [r for line in reply.json()["derivation"]["lines"] for r in line["rules"]]
    parts = [p for r in rules for p in r["source_parts"]]
    assert any("math" in p for p in parts)
    assert all("`" not in p.get("text", "") for p in parts)
