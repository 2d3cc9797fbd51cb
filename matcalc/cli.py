"""The ``matcalc`` command line: one argparse subcommand per job, errors without tracebacks."""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import matcalc

from . import __version__
from .budget import BASE_STEPS, STEPS_PER_NODE
from .errors import MatcalcError
from .expr import Expr, Symbol
from .optimize import command as _minimize
from .parse import parse
from .shapes import declaration_of, describe

EXIT_OK = 0
EXIT_USAGE = 2
"""Bad input: a formula or declaration matcalc rejects, or a malformed command line."""
EXIT_INTERNAL = 3
"""A bug in matcalc (set MATCALC_TRACEBACK=1 to see the traceback)."""

_WHERE = re.compile(r"(?<![A-Za-z0-9_\\])where(?![A-Za-z0-9_])")


# ------------------------------------------------------------------ shared options
# Every subcommand is assembled from these helpers, so the same option means the same
# thing everywhere (later: --wrt, --layout, --check, --steps).


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {value}")
    return value


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
    return with_declarations(text, args.decl)


def with_declarations(text: str, entries: Sequence[str]) -> str:
    """``text`` with the where-clause entries appended (a where-clause is started if needed)."""
    entries = [entry.strip() for entry in entries if entry.strip()]
    if not entries:
        return text
    joiner = ", " if _WHERE.search(text) else " where "
    return text + joiner + ", ".join(entries)


# ------------------------------------------------------------------ describing names


def declaration(symbol: Symbol) -> str:
    """A name's kind as a where-clause entry would write it: ``symmetric matrix(n, n)``."""
    decl = declaration_of(symbol)
    return describe(symbol.shape) if decl is None else str(decl)


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


DERIVATIVES = ("grad", "jacobian", "hessian", "derivative")
"""The derivative kinds of the Python API that the command line exposes."""


def _add_layout(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--layout",
        choices=["numerator", "denominator"],
        default="numerator",
        help="numerator: m×n, entry (i, j) = dy_i/dx_j (the default); denominator: its"
        " transpose, n×m",
    )


def _add_of(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--of",
        choices=DERIVATIVES,
        default="grad",
        help="which derivative to compute (default: grad)",
    )
    _add_layout(parser)


def _derive(kind: str, args: argparse.Namespace) -> matcalc.Derivative:
    fn = getattr(matcalc, kind)
    options = {"layout": getattr(args, "layout", "numerator")} if kind == "jacobian" else {}
    with matcalc.derivation_budget(getattr(args, "max_steps", None)):
        return fn(formula_text(args), args.wrt, **options)


def _result_json(result: matcalc.Derivative) -> dict[str, object]:
    return {
        "function": str(result.function),
        "wrt": str(result.wrt),
        "result": str(result),
        "latex": result.latex(),
        "kind": result.expr.kind,
        "shape": _shape_json(result.expr),
    }


def _configure_derivative(kind: str) -> Callable[[argparse.ArgumentParser], None]:
    def configure(parser: argparse.ArgumentParser) -> None:
        _add_formula(parser)
        _add_wrt(parser)
        _add_decls(parser)
        if kind == "jacobian":
            _add_layout(parser)
        _add_format(parser, ("text", "latex", "numpy", "jax", "torch", "json"))
        parser.add_argument(
            "--steps", action="store_true", help="also print the derivation, rule by rule"
        )
        parser.add_argument(
            "--max-steps",
            type=_positive_int,
            metavar="N",
            help=f"the work budget of the derivation in steps (default: {BASE_STEPS:,} plus "
            f"{STEPS_PER_NODE} per unit of input size); raise it for very deep Hessians",
        )
        parser.add_argument(
            "--check",
            action="store_true",
            help="verify the result entry by entry on small concrete sizes; exit 1 if it"
            " fails",
        )

    return configure


def _run_derivative(kind: str) -> Callable[[argparse.Namespace], str | tuple[str, int]]:
    def run(args: argparse.Namespace) -> str | tuple[str, int]:
        result = _derive(kind, args)
        report = result.check() if getattr(args, "check", False) else None
        failed = report is not None and not report
        if args.format == "json":
            data = _result_json(result)
            if args.steps:
                data["steps"] = str(result.explain()).splitlines()
            if report is not None:
                data["check"] = {"ok": not failed, "report": str(report)}
            text = json.dumps(data, indent=2, ensure_ascii=False)
        elif args.format in ("numpy", "jax", "torch"):
            parts = [result.to_source(args.format).rstrip("\n")]
            if args.steps:
                parts.append("\n".join("# " + line for line in str(result.explain()).splitlines()))
            if report is not None:
                parts.append("# check: " + str(report).replace("\n", "\n# "))
            text = "\n\n".join(parts)
        else:
            latex = args.format == "latex"
            parts = [result.latex() if latex else str(result)]
            if args.steps:
                parts.append(str(result.explain("latex" if latex else "text")))
            if report is not None:
                parts.append(str(report))
            text = "\n\n".join(parts)
        return (text, 1) if failed else text

    return run


def _configure_differential(parser: argparse.ArgumentParser) -> None:
    _add_formula(parser)
    _add_wrt(parser)
    _add_decls(parser)
    _add_format(parser, ("text", "latex", "json"))


def _run_differential(args: argparse.Namespace) -> str:
    result = matcalc.differential(formula_text(args), args.wrt)
    if args.format == "latex":
        return result.latex()
    if args.format == "json":
        data = {"wrt": args.wrt, "result": str(result), "latex": result.latex()}
        return json.dumps(data, indent=2, ensure_ascii=False)
    return str(result)


def _configure_check(parser: argparse.ArgumentParser) -> None:
    _add_formula(parser)
    _add_wrt(parser)
    _add_decls(parser)
    _add_of(parser)
    _add_format(parser, ("text", "json"))
    parser.add_argument("--claim", metavar="ANSWER",
                        help="check this answer instead: is it the derivative? if not, a "
                        "counterexample and the mistake it makes")


def _run_claim(args: argparse.Namespace) -> str | tuple[str, int]:
    report = matcalc.check_claim(formula_text(args), args.wrt, args.claim, of=args.of,
                                 layout=getattr(args, "layout", "numerator"))
    if args.format == "json":
        text = json.dumps(report.as_dict(), indent=2, ensure_ascii=False)
    else:
        text = str(report)
    return text if report else (text, 1)


def _run_check(args: argparse.Namespace) -> str | tuple[str, int]:
    if args.claim is not None:
        return _run_claim(args)
    result = _derive(args.of, args)
    report = result.check()
    if args.format == "json":
        data = _result_json(result)
        data["check"] = {"ok": bool(report), "report": str(report)}
        text = json.dumps(data, indent=2, ensure_ascii=False)
    else:
        text = f"{result}\n\n{report}"
    return text if report else (text, 1)


def _configure_explain(parser: argparse.ArgumentParser) -> None:
    _add_formula(parser)
    _add_wrt(parser)
    _add_decls(parser)
    _add_of(parser)
    _add_format(parser, ("text", "latex", "markdown", "json"))
    parser.add_argument("--verbose", action="store_true",
                        help="every rule application of the engine, one per step")


def _run_explain(args: argparse.Namespace) -> str:
    result = _derive(args.of, args)
    if args.format == "json":
        return json.dumps(result.derivation().as_dict(), indent=2, ensure_ascii=False)
    return str(result.explain(args.format, verbose=args.verbose))


def _configure_rules(parser: argparse.ArgumentParser) -> None:
    from .ruletable import families

    parser.add_argument("--family", choices=families(), help="only this rule family")
    parser.add_argument(
        "--no-verify",
        dest="verify",
        action="store_false",
        help="skip the numeric self-check of each rule (the verified column says 'not run')",
    )
    _add_format(parser, ("text", "latex", "json"))


def _run_rules(args: argparse.Namespace) -> str | tuple[str, int]:
    from .printing.source import source_latex
    from .printing.tex import tex_name, tex_text
    from .ruletable import rule_table

    table = rule_table(args.family, verify=args.verify)
    failed = any(e.verified == "FAILED" for e in table)
    if args.format == "json":
        text = json.dumps(
            [
                {"name": e.name, "family": e.family, "identity": e.identity, "latex": e.latex,
                 "source": e.source, "verified": e.verified}
                for e in table
            ],
            indent=2,
            ensure_ascii=False,
        )
    elif args.format == "latex":
        lines = []
        for e in table:
            math = e.latex if e.latex is not None else r"\text{" + tex_text(e.identity) + "}"
            lines.append(rf"{tex_name(e.name)} & ${math}$ & {source_latex(e.source)} \\")
        text = "\n".join(lines)
    else:
        lines = []
        family = None
        for e in table:
            if e.family != family:
                family = e.family
                lines.append(f"{'' if not lines else chr(10)}[{family}]")
            lines.append(f"{e.name}: {e.identity}")
            lines.append(f"    source: {e.source}")
            lines.append(f"    verified: {e.verified}")
        checked = sum(e.verified == "yes" for e in table)
        lines.append("")
        lines.append(
            f"{len(table)} rules; {checked} verified numerically just now"
            if args.verify
            else f"{len(table)} rules"
        )
        text = "\n".join(lines)
    return (text, 1) if failed else text


def _configure_doc(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--output",
        "-o",
        metavar="FILE",
        help="FILE.tex writes the LaTeX source, FILE.pdf compiles it (needs pdflatex or"
        " latexmk); without -o the LaTeX goes to standard output",
    )


def _run_doc(args: argparse.Namespace) -> str | tuple[str, int]:
    from pathlib import Path

    from .doc import build_document, compile_pdf, tex_engine

    source = build_document()
    if not args.output:
        return source
    out = Path(args.output)
    if out.suffix == ".pdf":
        if tex_engine() is None:
            tex = out.with_suffix(".tex")
            tex.write_text(source, encoding="utf-8")
            print(
                f"error: no TeX engine found (pdflatex or latexmk); wrote the LaTeX source to"
                f" {tex} instead\n  hint: apt-get install texlive-latex-base"
                " texlive-latex-recommended texlive-fonts-recommended",
                file=sys.stderr,
            )
            return ("", 1)
        compile_pdf(source, out)
        return f"wrote {out}"
    if out.suffix != ".tex":
        raise MatcalcError(f"cannot tell what to write from {out.name!r}",
                           hint="use -o FILE.tex or -o FILE.pdf")
    out.write_text(source, encoding="utf-8")
    return f"wrote {out}"


def _configure_serve(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to listen on (default: 127.0.0.1, this machine only)")
    parser.add_argument("--port", "-p", type=int, default=8000,
                        help="port (default: 8000; 0 picks a free one)")
    parser.add_argument("--open", action="store_true", help="open the page in a browser")
    parser.add_argument("--workers", type=int, default=2,
                        help="derivation worker processes (default: 2)")
    parser.add_argument("--timeout", type=float, default=15.0,
                        help="seconds a derivation may take (default: 15)")


def _run_serve(args: argparse.Namespace) -> str:
    try:
        from .web.pool import Limits
        from .web.server import serve
    except ImportError as err:
        raise MatcalcError(f"the playground needs the web extra ({err.name} is missing)",
                           hint='pip install "matcalc-symbolic[web]"') from None
    serve(args.host, args.port, open_browser=args.open,
          limits=Limits(workers=max(1, args.workers), timeout=args.timeout))
    return ""


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

_DERIVATIVE_COMMANDS = {
    "grad": (
        "the gradient of a scalar function, same shape as the variable",
        (
            'matcalc grad "||A x - b||_2^2" --wrt x',
            'matcalc grad "x^T A x" --wrt x --decl "A: symmetric" --format latex',
            'matcalc grad "log(1 + exp(-y w^T x)) where y: scalar" --wrt w --steps',
            'matcalc grad "||X w - y||_2^2" --wrt w --format numpy --check',
        ),
    ),
    "jacobian": (
        "the Jacobian of a vector function: m×n, entry (i, j) = dy_i/dx_j (numerator layout)",
        (
            'matcalc jacobian "softmax(x)" --wrt x',
            'matcalc jacobian "A x" --wrt x --layout denominator',
        ),
    ),
    "hessian": (
        "the Hessian of a scalar function of a vector: n×n, entry (i, j) = d2f/dx_i dx_j",
        (
            'matcalc hessian "x^T A x" --wrt x',
            'matcalc hessian "log(1 + exp(-y w^T x)) where y: scalar" --wrt w --check',
        ),
    ),
    "derivative": (
        "the derivative of any function in vec layout: d vec(F) = J d vec(X)",
        ('matcalc derivative "A X B" --wrt X',),
    ),
}

for _kind in DERIVATIVES:
    _summary, _examples = _DERIVATIVE_COMMANDS[_kind]
    COMMANDS.append(
        Command(
            name=_kind,
            summary=_summary,
            examples=_examples,
            configure=_configure_derivative(_kind),
            run=_run_derivative(_kind),
        )
    )

COMMANDS.append(
    Command(
        name="differential",
        summary="the differential of a scalar function, linear in d(variable)",
        examples=(
            'matcalc differential "x^T A x" --wrt x',
            'matcalc differential "logdet(X)" --wrt X --format latex',
        ),
        configure=_configure_differential,
        run=_run_differential,
    )
)

COMMANDS.append(
    Command(
        name="check",
        summary="verify a derivative entry by entry with SymPy, or check your own answer"
        " (--claim); exit 1 if it fails",
        examples=(
            'matcalc check "||A x - b||_2^2" --wrt x',
            'matcalc check "x^T A x" --wrt x --claim "2 A x"',
            'matcalc check "-y^T log(softmax(W^T x))" --wrt W --decl "y: probability vector"',
            'matcalc check "softmax(x)" --wrt x --of jacobian',
        ),
        configure=_configure_check,
        run=_run_check,
    )
)

COMMANDS.append(
    Command(
        name="explain",
        summary="the derivation, numbered, one rule and its source per step",
        examples=(
            'matcalc explain "||A x - b||_2^2" --wrt x',
            'matcalc explain "x^T A x" --wrt x --decl "A: symmetric" --format latex',
        ),
        configure=_configure_explain,
        run=_run_explain,
    )
)

COMMANDS.append(
    Command(
        name="minimize",
        summary="minimize a formula over some of its names, the others bound to data",
        examples=_minimize.EXAMPLES,
        configure=_minimize.configure,
        run=_minimize.run,
    )
)

COMMANDS += [
    Command(
        name="rules",
        summary="list the rule table: name, identity, source, and a numeric self-check",
        examples=("matcalc rules", "matcalc rules --family differentials --format json"),
        configure=_configure_rules,
        run=_run_rules,
    ),
    Command(
        name="serve",
        summary="the local web playground: type a formula, see its derivative typeset",
        examples=("matcalc serve --open", "matcalc serve --port 8080"),
        configure=_configure_serve,
        run=_run_serve,
    ),
    Command(
        name="doc",
        summary="write the LaTeX cheat sheet (rule table and worked examples), or its PDF",
        examples=("matcalc doc -o matcalc.pdf", "matcalc doc -o matcalc.tex"),
        configure=_configure_doc,
        run=_run_doc,
    ),
]


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
        if output:
            print(output)
        sys.stdout.flush()
    except BrokenPipeError:  # e.g. `matcalc parse ... | head -1`
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    return status
