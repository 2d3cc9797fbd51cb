"""The ``matcalc`` command line: one argparse subcommand per job, errors without tracebacks."""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import re
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import matcalc

from . import __version__
from .errors import MatcalcError
from .expr import Expr, Symbol, kind_of
from .parse import parse
from .shapes import Decl, describe

EXIT_OK = 0
EXIT_USAGE = 2
"""Bad input: a formula or declaration matcalc rejects, or a malformed command line."""
EXIT_INTERNAL = 3
"""A bug in matcalc (set MATCALC_TRACEBACK=1 to see the traceback)."""

_WHERE = re.compile(r"(?<![A-Za-z0-9_\\])where(?![A-Za-z0-9_])")


# ------------------------------------------------------------------ shared options
# Every subcommand is assembled from these helpers, so the same option means the same
# thing everywhere (later: --wrt, --layout, --check, --steps).


def _add_formula(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "formula",
        help="the formula, text or LaTeX, optionally with a where-clause; '-' reads stdin",
    )


def _add_decls(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--decl",
        "-d",
        action="append",
        default=[],
        metavar="ENTRY",
        help="a where-clause entry such as 'A: symmetric matrix(n, n)' or 's = softmax(x)'"
        " (repeatable)",
    )


def _add_format(parser: argparse.ArgumentParser, choices: Sequence[str]) -> None:
    parser.add_argument(
        "--format",
        "-f",
        choices=list(choices),
        default=choices[0],
        help=f"output format (default: {choices[0]})",
    )


def _add_wrt(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--wrt",
        "-w",
        required=True,
        metavar="NAME",
        help="the variable to differentiate with respect to",
    )


def formula_text(args: argparse.Namespace) -> str:
    """The formula with every ``--decl`` entry appended to its where-clause."""
    text = sys.stdin.read().strip() if args.formula == "-" else args.formula
    entries = [entry.strip() for entry in args.decl if entry.strip()]
    if not entries:
        return text
    joiner = ", " if _WHERE.search(text) else " where "
    return text + joiner + ", ".join(entries)


# ------------------------------------------------------------------ describing names


def declaration(symbol: Symbol) -> str:
    """A name's kind as a where-clause entry would write it: ``symmetric matrix(n, n)``."""
    kind = kind_of(symbol.shape)
    rows, cols = symbol.shape
    if kind == "scalar":
        decl = Decl("scalar", (), symbol.props)
    elif kind == "vector":
        decl = Decl("vector", (rows,), symbol.props)
    elif kind == "matrix":
        decl = Decl("matrix", (rows, cols), symbol.props)
    else:
        return describe(symbol.shape)
    return str(decl)


def _names(expr: Expr) -> list[Symbol]:
    unique = {s.name: s for s in expr.free_symbols()}
    return [unique[name] for name in sorted(unique)]


def _shape_json(expr: Expr) -> list[int | str]:
    return [d if isinstance(d, int) else str(d) for d in expr.shape]


# ------------------------------------------------------------------ subcommands


@dataclass(frozen=True)
class Command:
    """A subcommand: its options and the function producing its output (and exit status)."""

    name: str
    summary: str
    examples: tuple[str, ...]
    configure: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], str | tuple[str, int]]


def _configure_parse(parser: argparse.ArgumentParser) -> None:
    _add_formula(parser)
    _add_decls(parser)
    _add_format(parser, ("text", "latex", "json"))


def _run_parse(args: argparse.Namespace) -> str:
    expr = parse(formula_text(args))
    if args.format == "latex":
        return expr.latex()
    names = _names(expr)
    if args.format == "json":
        data = {
            "text": str(expr),
            "latex": expr.latex(),
            "kind": expr.kind,
            "shape": _shape_json(expr),
            "names": {
                s.name: {
                    "kind": s.kind,
                    "shape": _shape_json(s),
                    "properties": sorted(s.props),
                    "declaration": declaration(s),
                }
                for s in names
            },
        }
        return json.dumps(data, indent=2, ensure_ascii=False)
    lines = [str(expr), f"kind: {describe(expr.shape)}"]
    lines.append("names:" if names else "names: none")
    lines += [f"  {s.name}: {declaration(s)}" for s in names]
    lines.append(f"latex: {expr.latex()}")
    return "\n".join(lines)


def _can_check() -> bool:
    """Whether results can be verified (``Derivative.check`` needs ``matcalc.verify``)."""
    return importlib.util.find_spec("matcalc.verify") is not None


def _configure_grad(parser: argparse.ArgumentParser) -> None:
    _add_formula(parser)
    _add_wrt(parser)
    _add_decls(parser)
    _add_format(parser, ("text", "latex", "json"))
    parser.add_argument(
        "--steps", action="store_true", help="also print the derivation, rule by rule"
    )
    if _can_check():
        parser.add_argument(
            "--check",
            action="store_true",
            help="verify the result entry by entry on small concrete sizes; exit 1 if it fails",
        )


def _run_grad(args: argparse.Namespace) -> str | tuple[str, int]:
    result = matcalc.grad(formula_text(args), args.wrt)
    report = result.check() if getattr(args, "check", False) else None
    failed = report is not None and not getattr(report, "ok", True)
    if args.format == "json":
        data: dict[str, object] = {
            "function": str(result.function),
            "wrt": str(result.wrt),
            "result": str(result),
            "latex": result.latex(),
            "kind": result.expr.kind,
            "shape": _shape_json(result.expr),
        }
        if args.steps:
            data["steps"] = result.explain().splitlines()
        if report is not None:
            data["check"] = {"ok": not failed, "report": str(report)}
        text = json.dumps(data, indent=2, ensure_ascii=False)
    else:
        latex = args.format == "latex"
        parts = [result.latex() if latex else str(result)]
        if args.steps:
            parts.append(result.explain("latex" if latex else "text"))
        if report is not None:
            parts.append(str(report))
        text = "\n\n".join(parts)
    return (text, 1) if failed else text


COMMANDS: list[Command] = [
    Command(
        name="parse",
        summary="read a formula; show its normalised text, kinds, shapes and LaTeX",
        examples=(
            'matcalc parse "x^T A x where A: symmetric"',
            'matcalc parse "||A x - b||_2^2" --format latex',
            'matcalc parse "x^\\top W y" --decl "W: matrix(n, m)" --format json',
        ),
        configure=_configure_parse,
        run=_run_parse,
    ),
]
"""The registered subcommands; a subcommand is listed only once it works."""

if hasattr(matcalc, "grad"):
    COMMANDS.append(
        Command(
            name="grad",
            summary="the gradient of a scalar function, same shape as the variable",
            examples=(
                'matcalc grad "||A x - b||_2^2" --wrt x',
                'matcalc grad "x^T A x" --wrt x --decl "A: symmetric" --format latex',
                'matcalc grad "log(1 + exp(-y w^T x)) where y: scalar" --wrt w --steps',
            ),
            configure=_configure_grad,
            run=_run_grad,
        )
    )


# ------------------------------------------------------------------ entry point


def _epilog(examples: Sequence[str]) -> str:
    return "examples:\n" + "\n".join(f"  {line}" for line in examples)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``matcalc`` command with every registered subcommand."""
    parser = argparse.ArgumentParser(
        prog="matcalc",
        description="Symbolic matrix calculus in textbook notation.",
        epilog=_epilog([ex for cmd in COMMANDS for ex in cmd.examples])
        + "\n\nA formula that starts with '-' goes after '--': matcalc parse -- '-x'"
        + "\nExit status: 0 success, 2 rejected input or usage error, 3 internal error.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"matcalc {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for cmd in COMMANDS:
        p = sub.add_parser(
            cmd.name,
            help=cmd.summary,
            description=cmd.summary[0].upper() + cmd.summary[1:] + ".",
            epilog=_epilog(cmd.examples),
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        cmd.configure(p)
        p.set_defaults(run=cmd.run)
    return parser


def _robust_streams() -> None:
    """Never crash on a terminal that cannot show ``×`` or ``ᵀ``."""
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None:
            reconfigure(errors="backslashreplace")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``matcalc`` command; returns the exit status."""
    _robust_streams()
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "run", None) is None:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    try:
        output = args.run(args)
        status = EXIT_OK
        if isinstance(output, tuple):
            output, status = output
    except MatcalcError as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130
    except Exception as err:  # a bug: say so briefly, unless asked for the traceback
        if os.environ.get("MATCALC_TRACEBACK"):
            raise
        print(
            f"internal error: {type(err).__name__}: {err}\n"
            "this is a bug in matcalc; rerun with MATCALC_TRACEBACK=1 and report it",
            file=sys.stderr,
        )
        return EXIT_INTERNAL
    try:
        print(output)
        sys.stdout.flush()
    except BrokenPipeError:  # e.g. `matcalc parse ... | head -1`
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    return status
