"""Where in the user's text a derivation stopped: the sub-formula an error is about."""

from __future__ import annotations

from collections.abc import Mapping

from .errors import MatcalcError, UnsupportedError
from .expr import Expr, fold_dag
from .parse import occurrences


def origin(text: str, about: Expr, decls: Mapping[str, str]) -> int | None:
    """The position in ``text`` of the sub-formula written as ``about`` (``det(u v^T)`` whose
    argument is singular); None when it is not written there (a derived sub-expression)."""
    written = occurrences(text, **decls)
    sizes: dict[Expr, int] = {}  # nodes written out as a tree, one memo for all the DAGs

    def size(x: Expr) -> int:
        return fold_dag(x, lambda _node, inner: 1 + sum(inner), sizes)

    # compared by tree size first: the ~2000 sub-formulas of a deep network are not printed
    # one by one
    target = size(about)
    for e, start, _ in written:
        if size(e) == target and str(e) == str(about):
            return start
    return None


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
