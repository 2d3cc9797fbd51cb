"""The ``matcalc minimize`` subcommand: options, data file, and the printed result."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from ..errors import DataError, MatcalcError
from .solve import METHODS, minimize

EXAMPLES = (
    'matcalc minimize "||A x - b||_2^2" --wrt x --data problem.npz --constraint "x >= 0"',
    'matcalc minimize "1/2 w^T w + 1^T softplus(-y ⊙ (X w))" --wrt w --data train.npz'
    " --verbose",
    'matcalc minimize "||X w - y||_2^2 + lambda ||w||_1" --wrt w --data d.npz -o w.npz',
)


def configure(parser: argparse.ArgumentParser) -> None:
    """The options of ``matcalc minimize``."""
    parser.add_argument("formula", help="the objective, a scalar formula; '-' reads stdin")
    parser.add_argument("--wrt", "-w", action="append", required=True, metavar="NAME",
                        help="a variable to minimize over (repeatable); every other name is"
                             " data")
    parser.add_argument("--data", metavar="FILE.npz",
                        help="arrays named like the formula's other names (np.savez); an array"
                             " named like a variable is its starting point")
    parser.add_argument("--constraint", "-c", action="append", default=[], metavar="C",
                        help="a constraint such as 'x >= 0', '0 <= x <= 1', '1^T x = 1',"
                             " 'A x <= b' (repeatable)")
    parser.add_argument("--decl", "-d", action="append", default=[], metavar="ENTRY",
                        help="a declaration such as 'A: symmetric' (repeatable)")
    parser.add_argument("--method", choices=METHODS, default="auto",
                        help="the method (default: linear-CG for an unconstrained quadratic"
                             " whose dense Hessian costs more than ten Hessian-vector"
                             " products; with at most bounds: projected-Newton"
                             " when the exact Hessian is cheap, else L-BFGS (matcalc's own;"
                             " SciPy's is L-BFGS-B); with general"
                             " constraints SLSQP up to 300 unknowns, else augmented-lagrangian)")
    parser.add_argument("--tol", type=float, default=1e-7,
                        help="KKT residual to reach, relative to the largest gradient entry at the"
                             " start")
    parser.add_argument("--max-iter", type=int, default=10_000, help="iteration limit")
    parser.add_argument("--verbose", "-v", action="store_true",
                        help="log the iterations on standard error")
    parser.add_argument("--format", "-f", choices=["text", "json"], default="text")
    parser.add_argument("--output", "-o", metavar="FILE.npz",
                        help="also save the solution arrays, named like the variables")


def _declarations(entries: list[str]) -> dict[str, str]:
    decls = {}
    for entry in entries:
        name, sep, kind = entry.partition(":")
        if not sep or not name.strip():
            raise MatcalcError(f"cannot read the declaration {entry!r}",
                               hint="write NAME: KIND, e.g. 'A: symmetric matrix(n, n)'")
        decls[name.strip()] = kind.strip()
    return decls


def _load(path: str | None) -> dict[str, np.ndarray]:
    if path is None:
        return {}
    try:
        with np.load(Path(path), allow_pickle=False) as archive:
            if not hasattr(archive, "files"):
                raise DataError(f"{path} holds a single array; minimize needs names",
                                hint="save the arrays with np.savez(path, X=X, y=y)")
            return {name: archive[name] for name in archive.files}
    except (OSError, ValueError) as err:
        raise DataError(f"cannot read the data file {path}: {err}",
                        hint="give a .npz file written by np.savez") from None


def run(args: argparse.Namespace) -> str | tuple[str, int]:
    """Solve and print the result; exit status 1 when it is not optimal."""
    formula = sys.stdin.read().strip() if args.formula == "-" else args.formula
    data = _load(args.data)
    starts = {w: data[w] for w in args.wrt if w in data}
    result = minimize(formula, args.wrt, data, constraints=args.constraint,
                      method=args.method, x0=starts or None, tol=args.tol,
                      max_iter=args.max_iter, decls=_declarations(args.decl),
                      verbose=args.verbose)
    if args.output:
        np.savez(args.output, **{k: np.asarray(v) for k, v in result.solution.items()})
    if args.format == "json":
        text = json.dumps(result.to_dict(), indent=2, ensure_ascii=False)
    else:
        text = result.report()
    return text if result.success else (text, 1)
