"""The playground's requests and answers as plain data: validation, derivation, JSON shapes.

Nothing here knows about HTTP or processes: :func:`validate` runs in the server on the raw
JSON, :func:`run` runs in a worker process on the validated request (see ``pool.py``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import matcalc

from ..cli import declaration, with_declarations
from ..errors import MatcalcError
from ..expr import Expr, Symbol

MAX_REQUEST_BYTES = 10_000
"""The largest request body the server reads (the formula and everything else)."""

OPERATIONS: dict[str, str] = {
    "grad": "gradient",
    "jacobian": "Jacobian",
    "hessian": "Hessian",
    "derivative": "vec-derivative",
    "differential": "differential",
}
"""The operations of ``POST /api/derive``, with the names the page shows."""

CODE_TARGETS = ("numpy", "jax", "torch")

_FIELDS = {"formula", "op", "wrt", "where", "decls", "options"}
_OPTIONS = {"layout", "check", "claim", "derivation", "code"}


class RequestError(Exception):
    """A request the API rejects before deriving anything (HTTP status, message, hint)."""

    def __init__(self, status: int, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.hint = hint

    def payload(self) -> dict[str, Any]:
        """The JSON error body."""
        return error_payload("BadRequest", self.message, hint=self.hint)


def error_payload(kind: str, message: str, **extra: Any) -> dict[str, Any]:
    """The one shape of every error answer: ``{"error": {"type", "message", ...}}``."""
    body = {"type": kind, "message": message}
    body.update({k: v for k, v in extra.items() if v is not None})
    return {"error": body}


def _text(payload: dict[str, Any], name: str, *, required: bool = False) -> str | None:
    value = payload.get(name)
    if value is None:
        if required:
            raise RequestError(400, f"the field {name!r} is missing",
                               hint=f"send {name!r} as a string")
        return None
    if not isinstance(value, str):
        raise RequestError(400, f"the field {name!r} must be a string, "
                                f"not {type(value).__name__}")
    return value


def validate(payload: Any, *, need_wrt: bool = True) -> dict[str, Any]:
    """Check a decoded request body; return it with defaults filled in.

    Raises :class:`RequestError` (status 400) naming the first field that is wrong.
    """
    if not isinstance(payload, dict):
        raise RequestError(400, "the request body must be a JSON object",
                           hint='for example {"formula": "x^T x", "op": "grad", "wrt": "x"}')
    unknown = sorted(set(payload) - _FIELDS)
    if unknown:
        raise RequestError(400, f"unknown field {unknown[0]!r}",
                           hint="fields: " + ", ".join(sorted(_FIELDS)))
    formula = _text(payload, "formula", required=True)
    assert formula is not None
    if not formula.strip():
        raise RequestError(400, "the formula is empty", hint="type a formula such as x^T A x")
    op = _text(payload, "op") or "grad"
    if op not in OPERATIONS:
        raise RequestError(400, f"unknown op {op!r}", hint="one of " + ", ".join(OPERATIONS))
    wrt = _text(payload, "wrt", required=need_wrt)
    if need_wrt and not (wrt or "").strip():
        raise RequestError(400, "no variable to differentiate with respect to ('wrt' is empty)",
                           hint="name one of the formula's variables, e.g. x")
    where = _text(payload, "where") or ""
    decls = payload.get("decls") or {}
    if not isinstance(decls, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in decls.items()
    ):
        raise RequestError(400, "'decls' must map names to declarations",
                           hint='for example {"A": "symmetric matrix"}')
    options = payload.get("options") or {}
    if not isinstance(options, dict):
        raise RequestError(400, "'options' must be a JSON object")
    unknown = sorted(set(options) - _OPTIONS)
    if unknown:
        raise RequestError(400, f"unknown option {unknown[0]!r}",
                           hint="options: " + ", ".join(sorted(_OPTIONS)))
    layout = options.get("layout", "numerator")
    if layout not in ("numerator", "denominator"):
        raise RequestError(400, f"unknown layout {layout!r}", hint="numerator or denominator")
    for flag in ("check", "derivation", "code"):
        if not isinstance(options.get(flag, False), bool):
            raise RequestError(400, f"the option {flag!r} must be true or false")
    claim = options.get("claim")
    if claim is not None and not isinstance(claim, str):
        raise RequestError(400, "the option 'claim' must be a string")
    if claim is not None and op == "differential":
        raise RequestError(400, "a claim is checked against a derivative, not a differential",
                           hint="op: grad, jacobian, hessian or derivative")
    return {
        "formula": formula,
        "op": op,
        "wrt": wrt.strip() if wrt else wrt,
        "where": where,
        "decls": dict(decls),
        "options": {
            "layout": layout,
            "check": options.get("check", False),
            "claim": claim.strip() if claim and claim.strip() else None,
            "derivation": options.get("derivation", True),
            "code": options.get("code", True),
        },
    }


# ------------------------------------------------------------------ answers


def _shape(expr: Expr) -> list[int | str]:
    return [d if isinstance(d, int) else str(d) for d in expr.shape]


def describe(expr: Expr) -> dict[str, Any]:
    """An expression as JSON: text, LaTeX, kind and shape."""
    return {"text": str(expr), "latex": expr.latex(), "kind": expr.kind, "shape": _shape(expr)}


def variables(expr: Expr) -> list[dict[str, Any]]:
    """The formula's names, sorted, each with its kind, shape and where-clause declaration."""
    unique: dict[str, Symbol] = {s.name: s for s in expr.free_symbols()}
    return [
        {
            "name": name,
            "latex": unique[name].latex(),
            "kind": unique[name].kind,
            "shape": _shape(unique[name]),
            "declaration": declaration(unique[name]),
        }
        for name in sorted(unique)
    ]


def formula_error(err: MatcalcError) -> dict[str, Any]:
    """A rejected formula as JSON: message, hint, line, column and the offending line."""
    source_line = None
    if err.text is not None and err.pos is not None:
        start = err.text.rfind("\n", 0, err.pos) + 1
        end = err.text.find("\n", err.pos)
        source_line = err.text[start : end if end != -1 else len(err.text)]
    return error_payload(
        type(err).__name__,
        err.message,
        hint=err.hint,
        line=err.line,
        column=err.column,
        source_line=source_line,
    )


def derivation(result: matcalc.Derivative) -> dict[str, Any]:
    """The derivation as lines of LaTeX, each with what justifies it (rules and sources)."""
    chain = result.derivation()
    return {
        "title": chain.title,
        "title_latex": chain.title_latex,
        "lines": [
            {
                "role": line.role,
                "latex": f"{line.lhs_latex} = {line.rhs_latex}" if line.lhs_latex
                else f"{{}} = {line.rhs_latex}",
                "text": line.text,
                "note": line.note,
                "note_latex": line.note_latex,
                "rules": row["rules"],
            }
            for line, row in zip(chain.lines, chain.as_dict()["lines"], strict=True)
        ],
        "latex": chain.align(),
        "text": chain.text(),
    }


def _code(result: matcalc.Derivative) -> dict[str, Any]:
    code: dict[str, Any] = {"latex": result.latex()}
    for target in CODE_TARGETS:
        try:
            code[target] = result.to_source(target)
        except MatcalcError as err:  # a function the target cannot express
            code[target] = None
            code[f"{target}_error"] = err.message
    return code


def _claim(request: dict[str, Any], function: Expr) -> dict[str, Any]:
    """``check_claim``'s verdict on the user's own answer, or why the answer was not read."""
    options = request["options"]
    try:
        verdict = matcalc.check_claim(function, request["wrt"], options["claim"],
                                      of=request["op"], layout=options["layout"],
                                      **request["decls"])
    except MatcalcError as err:
        return formula_error(err)
    return {"report": str(verdict)} | verdict.as_dict()  # as_dict holds the verdict, `ok`


_DERIVE: dict[str, Callable[..., Any]] = {
    "grad": lambda f, wrt, decls, layout: matcalc.grad(f, wrt, **decls),
    "jacobian": lambda f, wrt, decls, layout: matcalc.jacobian(f, wrt, layout=layout, **decls),
    "hessian": lambda f, wrt, decls, layout: matcalc.hessian(f, wrt, **decls),
    "derivative": lambda f, wrt, decls, layout: matcalc.derivative(f, wrt, **decls),
    "differential": lambda f, wrt, decls, layout: matcalc.differential(f, wrt, **decls),
}


def derive(request: dict[str, Any]) -> dict[str, Any]:
    """Answer a validated derive request (raises MatcalcError when the formula is rejected)."""
    text = with_declarations(request["formula"], [request["where"]])
    function = matcalc.parse(text, **request["decls"])
    options = request["options"]
    op = request["op"]
    answer: dict[str, Any] = {
        "op": op,
        "wrt": request["wrt"],
        "formula": describe(function),
        "variables": variables(function),
    }
    result = _DERIVE[op](function, request["wrt"], request["decls"], options["layout"])
    if isinstance(result, Expr):  # a differential: an expression in d(wrt), no code
        answer["result"] = describe(result)
        answer["code"] = {"latex": result.latex()}
        return answer
    answer["result"] = describe(result.expr) | {"text": str(result), "latex": result.latex()}
    if options["derivation"]:
        try:
            answer["derivation"] = derivation(result)
        except MatcalcError as err:  # the result stands even when its chain cannot be shown
            answer["derivation"] = formula_error(err)
    if options["code"]:
        answer["code"] = _code(result)
    if options["check"]:
        report = result.check()
        answer["check"] = {"ok": bool(report), "report": str(report)}
    if options["claim"] is not None:
        answer["claim"] = _claim(request, function)
    return answer


def parse_formula(request: dict[str, Any]) -> dict[str, Any]:
    """Answer a parse request: the formula read back and its variables."""
    text = with_declarations(request["formula"], [request["where"]])
    function = matcalc.parse(text, **request["decls"])
    return {"formula": describe(function), "variables": variables(function)}


JOBS: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "derive": derive,
    "parse": parse_formula,
}


def run(job: str, request: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    """Run one job on a validated request: (HTTP status, JSON body). Never raises."""
    try:
        return 200, JOBS[job](request)
    except MatcalcError as err:
        return 422, formula_error(err)
    except RecursionError:
        return 422, error_payload(
            "UnsupportedError", "the formula is nested too deeply to derive here",
            hint="split it with where-bindings (h = ...)",
        )
