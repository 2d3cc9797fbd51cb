"""Where in the user's text a derivation stopped: the sub-formula an error is about."""

from __future__ import annotations

from collections.abc import Mapping

from .calculus import differential_rules
from .errors import MatcalcError, UnsupportedError
from .expr import Call, Expr, fold_dag
from .parse import occurrences


def origin(text: str, about: Expr, decls: Mapping[str, str]) -> int | None:
    """The position in ``text`` of the sub-formula ``about`` comes from: the sub-formula
    written as ``about``, else the first whose differential rule brings in ``about``'s
    function of the same argument (``||X||_*``, whose gradient is ``polar(X)``, when the
    Hessian needs d polar(X)); None when neither is written."""
    written = occurrences(text, **decls)
    sizes: dict[Expr, int] = {}  # nodes written out as a tree, one memo for all the DAGs

    def same(e: Expr, target: Expr) -> bool:
        # compared by tree size first: the ~2000 sub-formulas of a deep network are not
        # printed one by one
        def size(x: Expr) -> int:
            return fold_dag(x, lambda _node, inner: 1 + sum(inner), sizes)

        return size(e) == size(target) and str(e) == str(target)

    for e, start, _ in written:
        if same(e, about):
            return start
    if not isinstance(about, Call):
        return None
    bringing = [r for r in differential_rules() if r.rhs is not None and any(
        isinstance(n, Call) and n.name == about.name for n in r.rhs.walk())]
    starts = [(start, any(same(c, about.args[0]) for c in e.children))
              for e, start, _ in written
              if any(next(iter(r.matches(e)), None) is not None for r in bringing)]
    ranked = [s for s, same in starts if same] + [s for s, _ in starts]
    return ranked[0] if ranked else None


def located(err: UnsupportedError, text: object, decls: Mapping[str, object]
            ) -> UnsupportedError:
    """``err`` with the position of what it is about in the user's ``text``, when it has
    none yet and that can be found; else ``err`` itself."""
    if err.pos is not None or err.about is None or not isinstance(text, str):
        return err
    try:
        pos = origin(text, err.about, {k: v for k, v in decls.items() if isinstance(v, str)})
    except MatcalcError:
        return err
    if pos is None:
        return err
    return type(err)(err.message, text=text, pos=pos, hint=err.hint, about=err.about)
