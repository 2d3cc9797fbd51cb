"""Text and LaTeX to typed expressions: the grammar, one transformer, friendly errors."""

from __future__ import annotations

import difflib
import re
import sys
import threading
from collections import OrderedDict
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass, field
from fractions import Fraction
from functools import cache

from lark import Lark, Token, Transformer_NonRecursive, Tree, v_args
from lark.exceptions import (
    LarkError,
    UnexpectedCharacters,
    UnexpectedInput,
    UnexpectedToken,
    VisitError,
)
from lark.lark import PostLex

from . import names
from .data import data_path
from .errors import DeclarationError, MatcalcError, ParseError
from .expr import (
    Add,
    Call,
    Commutation,
    Dim,
    Div,
    ElemDiv,
    ElemPow,
    Expr,
    Hadamard,
    Identity,
    Kron,
    Mul,
    Neg,
    Norm,
    Number,
    Ones,
    Pow,
    Sylvester,
    Symbol,
    Transpose,
    mul_dims,
)
from .functions import FUNCTIONS, canonical_function, known_function_names
from .shapes import WRITTEN_ONES, Decl, Dims, Inference, make_decl

MAX_LENGTH = 100_000
"""Longest accepted input, in characters."""
MAX_DEPTH = 200
"""Deepest accepted nesting of operations (where-bindings nest further without limit)."""
MAX_DIGITS = 1000
"""Most significant decimal digits of a number."""
LARGEST_NUMBER = Fraction(sys.float_info.max)
SMALLEST_NUMBER = Fraction(sys.float_info.min)
"""Numbers are exact, but generated code computes in floating point: a nonzero constant must
lie between these magnitudes (about 2.2e-308 and 1.8e308)."""
MAX_DIMENSION_DIGITS = 12
"""Longest declared size, in digits."""


@cache
def _lark() -> Lark:
    grammar = (data_path("grammar") / "matcalc.lark").read_text(encoding="utf-8")
    return Lark(
        grammar,
        parser="lalr",
        lexer="basic",
        start=["formula", "decls"],
        propagate_positions=True,
        postlex=PostLexer(),
        cache=True,  # building the LALR tables takes ~0.5 s; lark keeps them in a temp file
        maybe_placeholders=False,
    )


# ---------------------------------------------------------------------------- context


@dataclass
class _Context:
    """Per-parse state shared by the post-lexer and the transformer."""

    text: str
    decls: dict[str, Decl]
    defined: set[str] = field(default_factory=set)  # names declared or bound after `where`
    dims: Dims = field(default_factory=Dims)
    symbols: dict[str, Symbol] = field(default_factory=dict)
    offset: int = 0
    bars: list[str] = field(default_factory=list)  # open | and || (post-lexer state)

    def error(self, message: str, pos: int | None, hint: str | None = None, cls=ParseError):
        at = None if pos is None else min(max(pos + self.offset, 0), len(self.text))
        raise cls(message, text=self.text, pos=at, hint=hint)

    def defines(self, name: str) -> bool:
        return name in self.decls or name in self.defined

    def symbol(self, name: str) -> Expr:
        if name in self.symbols:
            return self.symbols[name]
        decl = self.decls.get(name)
        if decl is None:
            if name == "I":
                return Identity(self.dims.fresh())
            if names.is_greek(name):
                decl = Decl("scalar")
            elif name[0].isupper():
                decl = Decl("matrix")
            else:
                decl = Decl("vector")
        dims = list(decl.dims)
        if decl.kind == "scalar":
            shape = (1, 1)
        elif decl.kind == "vector":
            shape = (dims[0] if dims else self.dims.fresh(), 1)
        else:
            if not dims:
                rows = self.dims.fresh()
                square = "symmetric" in decl.props or "diagonal" in decl.props
                dims = [rows, rows if square else self.dims.fresh()]
            shape = (dims[0], dims[1])
        s = Symbol(name, shape, decl.props)
        self.symbols[name] = s
        return s

    def keeps_whole(self, name: str) -> bool:
        return (
            self.defines(name)
            or names.is_greek(name)
            or names.is_simple(name)
            or canonical_function(name) is not None
        )


_CONTEXT: ContextVar[_Context | None] = ContextVar("matcalc_parse_context", default=None)


# ---------------------------------------------------------------------------- positions


@dataclass(frozen=True, slots=True, eq=False)
class Located:
    """One occurrence of a sub-expression in the text: its span and its children's.

    Nodes are hash-consed, so equal sub-expressions are one object; their occurrences are
    not, and an error names the occurrence (its children align with ``expr.children``).
    """

    expr: Expr
    start: int
    end: int
    children: tuple[Located, ...] = ()
    depth: int = 1


def _located(expr: Expr, start: int, end: int, children: tuple[Located, ...] = ()) -> Located:
    """A new occurrence; rejects nesting beyond MAX_DEPTH where it happens."""
    depth = 1 + max((c.depth for c in children), default=0)
    if depth > MAX_DEPTH:
        ctx = _CONTEXT.get()
        assert ctx is not None
        ctx.error(f"the formula is nested more than {MAX_DEPTH} levels deep", start,
                  hint="split it with where-bindings (where h = ...)")
    return Located(expr, start, end, children, depth)


def _span(*parts: object) -> tuple[int, int]:
    starts, ends = [], []
    for p in parts:
        if isinstance(p, Located):
            starts.append(p.start)
            ends.append(p.end)
        elif isinstance(p, Token) and p.start_pos is not None:
            starts.append(p.start_pos)
            ends.append(p.end_pos)
    return min(starts), max(ends)


# ---------------------------------------------------------------------------- post-lexer


class PostLexer(PostLex):
    """lark's post-lexer hook: bars open or close, letter runs split, calls versus products."""

    # Terminals no grammar rule uses (the post-lexer turns them into others); lark would
    # drop them otherwise.
    always_accept = ("DBAR", "BAR", "NORM_LEFT", "NORM_RIGHT", "ABS_LEFT", "ABS_RIGHT")

    def process(self, stream: Iterator[Token]) -> Iterator[Token]:
        ctx = _CONTEXT.get()
        return stream if ctx is None else _postlex(ctx, stream)


_OPERAND_END = {"NAME", "NUMBER", "ONES", "ZEROS", "RPAREN", "RBRACE", "NORM_CLOSE", "ABS_CLOSE",
                "TRANSPOSE", "NORM_SUB"}
_CALL_NAME = re.compile(r"^(.*?)\s*(\(|\\left\()$", re.S)


def _split_token(tok: Token, value: str, type_: str, start: int, end: int) -> Token:
    return Token(type_, value, start_pos=start, line=tok.line, column=tok.column,
                 end_pos=end, end_line=tok.end_line, end_column=tok.end_column)


def _scan_where(ctx: _Context, tokens: list[Token]) -> None:
    """Names declared or bound after ``where`` are known before the formula is read."""
    where = next((i for i, t in enumerate(tokens) if t.type == "WHERE"), None)
    if where is None:
        return
    if where == len(tokens) - 1:
        ctx.error("nothing after where", len(ctx.text) - ctx.offset,
                  "for example: where A: symmetric")
    for tok, nxt in zip(tokens[where + 1:], tokens[where + 2:], strict=False):
        if tok.type == "NAME" and nxt.type in ("COLON", "EQUALS"):
            ctx.defined.add(names.normalize(str(tok)))


def _postlex(ctx: _Context, stream: Iterator[Token]) -> Iterator[Token]:
    """Open/close bars, split letter runs, decide calls versus products."""
    tokens = list(stream)  # lexing is cheap; the declarations after `where` are needed first
    _scan_where(ctx, tokens)
    bars: list[str] = []
    ctx.bars = bars
    prev: str | None = None
    for tok in tokens:
        kind = tok.type
        if kind in ("DBAR", "BAR"):
            want = "NORM" if kind == "DBAR" else "ABS"
            if bars and bars[-1] == want and prev in _OPERAND_END:
                bars.pop()
                kind = want + "_CLOSE"
            else:
                bars.append(want)
                kind = want + "_OPEN"
            tok = Token.new_borrow_pos(kind, tok.value, tok)
        elif kind in ("NORM_LEFT", "ABS_LEFT"):
            kind = kind.replace("LEFT", "OPEN")
            tok = Token.new_borrow_pos(kind, tok.value, tok)
        elif kind in ("NORM_RIGHT", "ABS_RIGHT"):
            kind = kind.replace("RIGHT", "CLOSE")
            tok = Token.new_borrow_pos(kind, tok.value, tok)
        elif kind == "NAME":
            yield from _name_tokens(ctx, tok)
            prev = "NAME"
            continue
        elif kind == "CALL":
            produced = list(_call_tokens(ctx, tok))
            yield from produced
            prev = produced[-1].type
            continue
        prev = kind
        yield tok


def _name_tokens(ctx: _Context, tok: Token) -> Iterator[Token]:
    raw = str(tok.value)
    wrappers = ("\\mathbf", "\\boldsymbol", "\\bm", "\\mathrm",
                "\\hat{", "\\tilde{", "\\bar{")
    if raw.startswith("\\") and not raw.startswith(wrappers):
        name = names.normalize(raw)
        if not names.is_greek(name):
            fn = canonical_function(name)
            hint = f"write \\{name}(...) with parentheses" if fn else None
            ctx.error(f"unknown LaTeX command {raw}", tok.start_pos, hint)
    name = names.normalize(raw)
    if (
        canonical_function(name)
        and not ctx.defines(name)
        and not names.is_simple(name)
        and not names.is_greek(name)
    ):
        ctx.error(
            f"{name} is a function: it needs an argument in parentheses",
            tok.start_pos,
            hint=f"write {name}(...)",
        )
    if ctx.keeps_whole(name) or raw.startswith("\\"):
        yield Token.new_borrow_pos("NAME", name, tok)
        return
    pos = tok.start_pos
    pieces = names.letter_run(name)
    for i, piece in enumerate(pieces):
        length = len(names.split_subscript(piece)[0])
        end = pos + length if i < len(pieces) - 1 else tok.end_pos
        yield _split_token(tok, piece, "NAME", pos, end)
        pos += length


def _call_tokens(ctx: _Context, tok: Token) -> Iterator[Token]:
    m = _CALL_NAME.match(str(tok.value))
    assert m is not None
    raw, paren = m.group(1), m.group(2)
    name = names.normalize(raw)
    paren_pos = tok.end_pos - len(paren)
    paren_tok = _split_token(tok, paren, "LPAREN", paren_pos, tok.end_pos)
    fn = canonical_function(name)
    if fn is not None and not ctx.defines(name):
        yield Token.new_borrow_pos("CALL", fn, tok)
        return
    is_latex_command = raw.startswith("\\") and not raw.startswith("\\math")
    if (
        ctx.defines(name)
        or names.is_greek(name)
        or (not is_latex_command and not names.is_lower_word(name))
    ):
        name_tok = _split_token(tok, raw, "NAME", tok.start_pos, tok.start_pos + len(raw))
        yield from _name_tokens(ctx, name_tok)
        yield paren_tok
        return
    close = difflib.get_close_matches(name, known_function_names(), n=1)
    hint = (f"did you mean {close[0]}? " if close else "") + (
        "known functions: " + ", ".join(known_function_names())
    )
    ctx.error(f"unknown function {name!r}", tok.start_pos, hint)


# ---------------------------------------------------------------------------- numbers

_PLAIN_NUMBER = re.compile(r"([0-9]+)(?:\.([0-9]+))?(?:[eE]([-+]?[0-9]+))?")


def number_value(text: str) -> Fraction | str:
    """The exact value of a number literal, or why it is refused (too long or too large)."""
    m = _PLAIN_NUMBER.fullmatch(text)
    if m is None:
        return "it is not a number"
    whole, frac, exp = m.group(1), m.group(2) or "", m.group(3) or "0"
    frac = frac.rstrip("0")
    digits = (whole + frac).lstrip("0")
    if len(digits) > MAX_DIGITS:
        return f"it has more than {MAX_DIGITS} significant digits"
    if len(exp.lstrip("+-").lstrip("0")) > 5:
        return "its exponent is too large"
    if not digits:
        return Fraction(0)
    # digits * 10^scale, checked against the float range before it is computed
    scale = int(exp) - len(frac)
    magnitude = len(digits) + scale  # the value lies in [10^(magnitude-1), 10^magnitude)
    if magnitude > 309 or magnitude < -307:
        return "it is outside the range of floating-point numbers (1e-307 to 1e308)"
    value = Fraction(int(digits)) * Fraction(10) ** scale
    if value > LARGEST_NUMBER or value < SMALLEST_NUMBER:
        return "it is outside the range of floating-point numbers (1e-307 to 1e308)"
    return value


# ---------------------------------------------------------------------------- transformer

_MUL_OPS = {"*", "@", "·", "×", "\\cdot", "\\times"}
_HADAMARD_OPS = {".*", "⊙", "∘", "\\odot", "\\circ"}
_KRON_OPS = {"⊗", "\\otimes"}


def _ctx() -> _Context:
    ctx = _CONTEXT.get()
    assert ctx is not None
    return ctx


@v_args(meta=True)
class _Builder(Transformer_NonRecursive):
    """The one transformer from lark's parse tree (with positions) to located expressions."""

    # -- atoms -----------------------------------------------------------------
    def name(self, meta, items):
        (tok,) = items
        return _located(_ctx().symbol(str(tok)), tok.start_pos, tok.end_pos)

    def number(self, meta, items):
        (tok,) = items
        value = number_value(str(tok))
        if isinstance(value, str):
            shown = str(tok) if len(str(tok)) <= 20 else str(tok)[:20] + "..."
            _ctx().error(f"the number {shown} is too long or too large: {value}", tok.start_pos,
                         "write a number of ordinary size, such as 1e-6 or 2.5")
        return _located(Number(value), tok.start_pos, tok.end_pos)

    def ones(self, meta, items):
        (tok,) = items  # a bold one is the ones vector wherever it stands
        return _located(Ones(WRITTEN_ONES), tok.start_pos, tok.end_pos)

    def zeros(self, meta, items):
        (tok,) = items
        return _located(Number(Fraction(0)), tok.start_pos, tok.end_pos)

    def group(self, meta, items):
        return items[1]

    def call(self, meta, items):
        tok, args = items[0], items[1]
        name = str(tok)
        start, end = meta.start_pos, meta.end_pos
        if name == "inv":
            self._arity(tok, args, 1)
            minus_one = _located(Number(Fraction(-1)), tok.start_pos, tok.end_pos)
            return _located(Pow(args[0].expr, minus_one.expr), start, end, (args[0], minus_one))
        if name == "kron":
            self._arity(tok, args, 2)
            return _located(Kron(args[0].expr, args[1].expr), start, end, tuple(args))
        if name == "commutation":
            self._arity(tok, args, 2)
            m, n = (_dimension(a.expr, tok) for a in args)
            return _located(Commutation(m, n), start, end)
        if name == "sylvester":
            self._arity(tok, args, 3)
            return _located(Sylvester(*(a.expr for a in args)), start, end, tuple(args))
        self._arity(tok, args, FUNCTIONS[name].arity)
        return _located(Call(name, tuple(a.expr for a in args)), start, end, tuple(args))

    def bare_call(self, meta, items):
        tok, arg = items
        name = canonical_function(names.normalize(str(tok)))
        return _located(Call(name, (arg.expr,)), meta.start_pos, meta.end_pos, (arg,))

    def _arity(self, tok: Token, args: list, n: int) -> None:
        if len(args) != n:
            _ctx().error(f"{tok} takes {n} argument{'s' if n > 1 else ''}, got {len(args)}",
                         tok.start_pos)

    def arguments(self, meta, items):
        return [i for i in items if isinstance(i, Located)]

    def norm(self, meta, items):
        arg = items[1]
        p = None
        if len(items) > 3:
            sub = str(items[3])
            if "F" in sub:
                p = "F"
            elif "inf" in sub or "∞" in sub:
                p = "inf"
            elif "*" in sub or "ast" in sub:
                p = "*"
            else:
                p = "1" if "1" in sub else "2"
        return _located(Norm(arg.expr, p), meta.start_pos, meta.end_pos, (arg,))

    def abs(self, meta, items):
        return _located(Call("abs", (items[1].expr,)), meta.start_pos, meta.end_pos, (items[1],))

    def frac(self, meta, items):
        num, den = [i for i in items if isinstance(i, Located)]
        return self._divide(num, den, meta.start_pos, meta.end_pos)

    def sqrt(self, meta, items):
        arg = items[2]
        return _located(Call("sqrt", (arg.expr,)), meta.start_pos, meta.end_pos, (arg,))

    # -- postfix ---------------------------------------------------------------
    def transpose(self, meta, items):
        return _located(Transpose(items[0].expr), meta.start_pos, meta.end_pos, (items[0],))

    def inverse_transpose(self, meta, items):
        base, tok = items[0], items[1]
        minus_one = _located(Number(Fraction(-1)), tok.start_pos, tok.end_pos)
        inverse = _located(Pow(base.expr, minus_one.expr), meta.start_pos, meta.end_pos,
                           (base, minus_one))
        return _located(Transpose(inverse.expr), meta.start_pos, meta.end_pos, (inverse,))

    def power(self, meta, items):
        base, exponent = items[0], _fold_negative(items[2])
        return _located(Pow(base.expr, exponent.expr), meta.start_pos, meta.end_pos,
                        (base, exponent))

    def elempow(self, meta, items):
        base, exponent = items[0], _fold_negative(items[2])
        return _located(ElemPow(base.expr, exponent.expr), meta.start_pos, meta.end_pos,
                        (base, exponent))

    # -- unary and sums --------------------------------------------------------
    def neg(self, meta, items):
        return _located(Neg(items[1].expr), meta.start_pos, meta.end_pos, (items[1],))

    def pos(self, meta, items):
        return items[1]

    def sum(self, meta, items):
        terms: list[Located] = [items[0]]
        for sign, term in zip(items[1::2], items[2::2], strict=True):
            if sign.type == "MINUS":
                term = _located(Neg(term.expr), sign.start_pos, term.end, (term,))
            terms.append(term)
        return _located(Add(tuple(t.expr for t in terms)), meta.start_pos, meta.end_pos,
                        tuple(terms))

    # -- products: one level, left to right ------------------------------------
    def product(self, meta, items):
        current: Located = items[0]
        pending: list[Located] = []  # factors of the Mul or Hadamard being built
        pending_kind: str | None = None

        def flush() -> Located:
            nonlocal pending, pending_kind
            if pending_kind is None:
                return current
            exprs = tuple(p.expr for p in pending)
            node = Mul(exprs) if pending_kind == "mul" else Hadamard(exprs)
            made = _located(node, *_span(*pending), tuple(pending))
            pending, pending_kind = [], None
            return made

        i = 1
        while i < len(items):
            op = None
            if isinstance(items[i], Token):
                op = str(items[i])
                i += 1
            factor = items[i]
            i += 1
            kind = (
                "mul" if op is None or op in _MUL_OPS
                else "had" if op in _HADAMARD_OPS
                else "kron" if op in _KRON_OPS
                else "ediv" if op in ("./", "⊘", "\\oslash")
                else "div"
            )
            if kind in ("mul", "had"):
                if pending_kind != kind:
                    current = flush()
                    pending, pending_kind = [current], kind
                pending.append(factor)
                continue
            current = flush()
            span = _span(current, factor)
            if kind == "kron":
                current = _located(Kron(current.expr, factor.expr), *span, (current, factor))
            elif kind == "ediv":
                current = _located(ElemDiv(current.expr, factor.expr), *span, (current, factor))
            else:
                current = self._divide(current, factor, *span)
        return flush()

    def _divide(self, num: Located, den: Located, start: int, end: int) -> Located:
        if isinstance(num.expr, Number) and isinstance(den.expr, Number):
            if den.expr.value == 0:
                _ctx().error("division by zero", den.start)
            return _located(Number(num.expr.value / den.expr.value), start, end)
        return _located(Div(num.expr, den.expr), start, end, (num, den))

    # -- declarations ----------------------------------------------------------
    def decl_type(self, meta, items):
        props = [" ".join(str(t).split()) for t in items
                 if isinstance(t, Token) and t.type == "PROPERTY"]
        kinds = [str(t) for t in items if isinstance(t, Token) and t.type == "KIND"]
        dims = next((i for i in items if isinstance(i, list)), [])
        try:
            return make_decl(props, kinds[0] if kinds else None, dims)
        except DeclarationError as err:
            _ctx().error(err.message, meta.start_pos if not meta.empty else None, err.hint,
                         DeclarationError)

    def dim_product(self, meta, items):
        factors = [t for t in items if t.type != "PROD_OP"]
        if any(str(t) != "*" for t in items if t.type == "PROD_OP"):
            _ctx().error("a size is a product with `*` (matrix(m*n, p))", meta.start_pos,
                         cls=DeclarationError)
        sizes = self.dims(meta, factors)
        out: Dim = sizes[0]
        for d in sizes[1:]:
            out = mul_dims(out, d)
        return out

    def dims(self, meta, items):
        out: list[Dim] = []
        for t in items:
            if not isinstance(t, Token):  # a product of sizes, already read
                out.append(t)
            elif t.type == "NAME":
                out.append(str(t))
            elif t.type == "NUMBER":
                text = str(t)
                if not text.isdigit() or int(text) == 0 or len(text) > MAX_DIMENSION_DIGITS:
                    _ctx().error(f"{text} is not a size: a dimension is a name or a whole "
                                 "number from 2 on", t.start_pos,
                                 "for example vector(n) or matrix(3, 4)", DeclarationError)
                out.append(int(text))
        return out


def _dimension(e: Expr, tok: Token) -> Dim:
    """A size written as an argument of ``commutation(m, n)``: a name, a number or a product."""
    if isinstance(e, Number) and e.value.denominator == 1 and e.value > 0:
        return int(e.value)
    if isinstance(e, Symbol):
        _ctx().symbols.pop(e.name, None)  # a size, not a variable of the formula
        return e.name
    if isinstance(e, Mul) and e.factors:
        parts = [_dimension(f, tok) for f in e.factors]
        out: Dim = parts[0]
        for p in parts[1:]:
            out = mul_dims(out, p)
        return out
    _ctx().error("commutation(m, n) takes two sizes (names or positive integers)",
                 tok.start_pos, hint="for example commutation(m, n) or commutation(2, 3)")
    raise AssertionError  # unreachable: error raises


def _fold_negative(e: Located) -> Located:
    if isinstance(e.expr, Neg) and isinstance(e.expr.arg, Number):
        return Located(Number(-e.expr.arg.value), e.start, e.end, (), e.depth)
    return e


# ---------------------------------------------------------------------------- errors

_EXPECTED_WORDS = {
    "NAME": "a name", "NUMBER": "a number", "CALL": "a function call", "LPAREN": "'('",
    "RPAREN": "')'", "NORM_OPEN": "'||'", "NORM_CLOSE": "a closing '||'", "ABS_OPEN": "'|'",
    "ABS_CLOSE": "a closing '|'", "PLUS": "'+'", "MINUS": "'-'", "PROD_OP": "an operator",
    "TRANSPOSE": "'^T'", "POW": "'^'", "ELEMPOW": "'.^'", "COMMA": "','", "COLON": "':'",
    "EQUALS": "'='", "KIND": "a kind (scalar, vector, matrix)", "PROPERTY": "a property",
    "LBRACE": "'{'", "RBRACE": "'}'", "ONES": "'1'", "ZEROS": "'0'",
    "FRAC": "\\frac", "SQRT": "\\sqrt", "NORM_SUB": "a subscript",
    "$END": "the end of the formula", "WHERE": "where",
}


def _describe_expected(expected: set[str]) -> str:
    words = sorted({_EXPECTED_WORDS.get(e, e.lower()) for e in expected})
    if not words:
        return "the end of the formula"
    if len(words) > 6:
        return "an operand or an operator"
    return ", ".join(words[:-1]) + (" or " if len(words) > 1 else "") + words[-1]


# Malformed examples, matched by lark's parser state (UnexpectedInput.match_examples).
_SYNTAX_HINTS = {
    "':' and '=' belong in declarations: x^T A x where A: symmetric, s = softmax(x)": [
        "x = y", "x: y", "x + y = z", "x^T = y", "x y = z", "tr(x) = y"],
    "a declaration is `name: kind` or `name = formula`": [
        "x where x vector", "x where x", "x where x: vector, y"],
    "a power needs an exponent: x.^2, A^-1, A^T": ["x^", "A^ + B", "x.^"],
}


def _syntax_hint(err: UnexpectedInput) -> str | None:
    def parse_example(text: str) -> None:
        _lark().parse(text, start="formula")

    token = _CONTEXT.set(None)  # the examples need no declarations
    try:
        return err.match_examples(parse_example, _SYNTAX_HINTS, use_accepts=True)
    except Exception:  # noqa: BLE001 - a hint is optional
        return None
    finally:
        _CONTEXT.reset(token)


def _friendly(ctx: _Context, err: UnexpectedInput, text: str) -> MatcalcError:
    if isinstance(err, UnexpectedCharacters):
        pos = err.pos_in_stream + ctx.offset
        ch = text[err.pos_in_stream] if err.pos_in_stream < len(text) else ""
        hint = None
        if ch == "\x00":
            return ParseError("NUL byte in the formula", text=ctx.text, pos=pos)
        if ch in "!#$%&;?`\"<>~":
            hint = "this character has no meaning in matcalc formulas"
        elif ch == "\\":
            hint = "unknown LaTeX command or spacing"
        elif ch == "_":
            hint = "norm subscripts are _1, _2 and _F; a name's subscript follows it directly (x_1)"
        elif ord(ch) > 127:
            hint = "only ASCII, Greek letters and the operators ⊙ ∘ ⊗ ᵀ are understood"
        return ParseError(f"unexpected character {ch!r}", text=ctx.text, pos=pos, hint=hint)
    if isinstance(err, UnexpectedToken):
        tok = err.token
        if tok.type == "$END":
            pos = len(text) + ctx.offset
            what = "the formula ends too early"
        else:
            pos = (tok.start_pos if tok.start_pos is not None else len(text)) + ctx.offset
            what = f"unexpected {tok.value!r}"
        expected = set(err.expected or ())
        # LALR states are shared, so a closing bar may be "expected" with none open: the
        # bars the post-lexer saw decide.
        if "NORM_CLOSE" in expected and ctx.bars and ctx.bars[-1] == "NORM":
            hint = "a norm opened with || is not closed"
        elif "ABS_CLOSE" in expected and ctx.bars and ctx.bars[-1] == "ABS":
            hint = "an absolute value opened with | is not closed"
        else:
            hint = _syntax_hint(err)
        # lark compares parser states with their stack depth, so nested parentheses
        # need a rule of their own
        if hint is None and "RPAREN" in expected and tok.type in ("$END", "COMMA"):
            hint = "a parenthesis is not closed"
        elif hint is None and tok.type == "RPAREN":
            hint = "this parenthesis closes nothing"
        return ParseError(
            f"{what}; expected {_describe_expected(expected)}",
            text=ctx.text,
            pos=pos,
            hint=hint,
        )
    return ParseError(str(err), text=ctx.text)


# ---------------------------------------------------------------------------- driver


def _parse_tree(ctx: _Context, text: str, start: str) -> Tree:
    token = _CONTEXT.set(ctx)
    try:
        return _lark().parse(text, start=start)
    except UnexpectedInput as err:
        raise _friendly(ctx, err, text) from None
    except MatcalcError:
        raise
    except LarkError as err:  # pragma: no cover - lark wraps callback errors
        orig = getattr(err, "orig_exc", None) or err.__context__
        if isinstance(orig, MatcalcError):
            raise orig from None
        raise ParseError(f"cannot read the formula: {err}", text=ctx.text) from None
    finally:
        _CONTEXT.reset(token)


def _build(ctx: _Context, tree: Tree | Token):
    token = _CONTEXT.set(ctx)
    try:
        return _Builder().transform(tree)
    except VisitError as err:  # lark wraps what a callback raises
        if isinstance(err.orig_exc, MatcalcError):
            raise err.orig_exc from None
        raise
    finally:
        _CONTEXT.reset(token)


def _decl_from_keyword(name: str, value: object) -> Decl:
    if isinstance(value, Decl):
        return value
    if not isinstance(value, str):
        raise DeclarationError(
            f"declaration of {name} must be a string such as 'symmetric matrix(n, n)', "
            f"got {type(value).__name__}"
        )
    prefix = "a: "
    ctx = _Context(text=value, decls={}, offset=-len(prefix))
    tree = _parse_tree(ctx, prefix + value, "decls")
    ((_kind, _name, decl),) = _read_entries(ctx, tree)
    return decl


def _read_entries(ctx: _Context, decls: Tree) -> list[tuple[str, Token, object]]:
    """``(kind, name, value)`` per declaration: a Decl, or the parse tree of a binding."""
    entries = []
    for item in decls.children:
        if not isinstance(item, Tree):
            continue  # a comma
        name_tok, sep, value = item.children
        if item.data == "bind":
            entries.append(("bind", name_tok, value))
            continue
        if isinstance(value, Tree) and value.children:
            decl = _build(ctx, value)
        else:  # `x:` with nothing after the colon
            ctx.error("a declaration needs a kind", sep.end_pos,
                      "scalar, vector or matrix", DeclarationError)
        entries.append(("declare", name_tok, decl))
    return entries


def parse(text: str, /, **decls: str) -> Expr:
    """Read a formula (text or LaTeX) into a typed expression.

    Keyword arguments declare kinds, as the ``where`` clause does:
    ``parse("x^T A x", A="symmetric matrix")``. A where-binding (``s = softmax(x)``) is
    typed once and shared wherever its name occurs, so the result is a DAG as large as the
    text, however often bindings refer to bindings.
    """
    if not isinstance(text, str):
        raise ParseError(f"a formula must be a string, got {type(text).__name__}")
    if len(text) > MAX_LENGTH:
        raise ParseError(
            f"the formula is {len(text)} characters long; the limit is {MAX_LENGTH}",
            hint="split it with where-bindings",
        )
    if not text.strip():
        raise ParseError("the formula is empty", hint="for example: x^T A x")
    declared: dict[str, Decl] = {}
    for key, value in decls.items():
        declared[names.normalize(key)] = _decl_from_keyword(key, value)
    ctx = _Context(text=text, decls=declared)
    tree = _parse_tree(ctx, text, "formula")
    body_tree = tree.children[0]
    bindings: dict[str, Tree] = {}
    binding_pos: dict[str, int] = {}
    if len(tree.children) > 2:
        for kind, name_tok, value in _read_entries(ctx, tree.children[2]):
            name = names.normalize(str(name_tok))
            if name in declared or name in bindings:
                ctx.error(f"{name} is declared twice", name_tok.start_pos, cls=DeclarationError)
            if kind == "declare":
                declared[name] = value  # type: ignore[assignment]
            else:
                bindings[name] = value  # type: ignore[assignment]
                binding_pos[name] = name_tok.start_pos
    body = _build(ctx, body_tree)
    reserved = {d for decl in declared.values() for d in decl.dims if isinstance(d, str)}
    inference = Inference(ctx.dims, lambda _e: None, text, reserved)
    typed: dict[str, Expr] = {}
    built: dict[str, Located] = {}
    for name in _binding_order(ctx, body, bindings, binding_pos, built):
        value = _substitute(built[name], typed)
        typed[name] = inference.elaborate_at(value)
        inference.opaque.add(id(typed[name]))
    result = inference.elaborate_at(_substitute(body, typed))
    typed_result = inference.finish(result)
    _remember_written(text, decls, [body, *built.values()])
    return typed_result


def _written_roots(text: str, decls: dict) -> list[Located]:
    """The located body of ``text`` and of each where-binding it uses, read anew."""
    declared = {names.normalize(k): _decl_from_keyword(k, v) for k, v in decls.items()}
    ctx = _Context(text=text, decls=declared)
    tree = _parse_tree(ctx, text, "formula")
    body = _build(ctx, tree.children[0])
    if len(tree.children) <= 2:
        return [body]
    bindings: dict[str, Tree] = {}
    positions: dict[str, int] = {}
    for kind, name_tok, value in _read_entries(ctx, tree.children[2]):
        name = names.normalize(str(name_tok))
        if kind == "declare":
            declared[name] = value  # type: ignore[assignment]
        else:
            bindings[name] = value  # type: ignore[assignment]
            positions[name] = name_tok.start_pos
    built: dict[str, Located] = {}
    _binding_order(ctx, body, bindings, positions, built)
    return [body, *built.values()]


def _bound_names(where: Located, bound: dict) -> list[str]:
    """Bound names that occur in a located expression, in order of first occurrence."""
    out: dict[str, None] = {}
    stack = [where]
    while stack:
        node = stack.pop()
        if isinstance(node.expr, Symbol) and node.expr.name in bound:
            out[node.expr.name] = None
        stack.extend(reversed(node.children))
    return list(out)


def _binding_order(ctx: _Context, body: Located, bindings: dict[str, Tree],
                   positions: dict[str, int], built: dict[str, Located]) -> list[str]:
    """The bindings the body uses, each after the bindings it uses (a cycle is an error);
    ``built`` receives the located definition of each."""
    used: dict[str, list[str]] = {}

    def uses(name: str) -> list[str]:
        if name not in used:
            built[name] = _build(ctx, bindings[name])
            used[name] = _bound_names(built[name], bindings)
        return used[name]

    order: list[str] = []
    state: dict[str, str] = {}  # "open" while its dependencies are visited, then "done"
    for root in _bound_names(body, bindings):
        stack = [(root, iter(uses(root)))]
        if state.get(root) == "done":
            continue
        state[root] = "open"
        while stack:
            name, pending = stack[-1]
            nxt = next(pending, None)
            if nxt is None:
                stack.pop()
                state[name] = "done"
                order.append(name)
            elif state.get(nxt) == "open":
                ctx.error(f"the binding of {nxt} refers to itself", positions.get(nxt),
                          cls=DeclarationError)
            elif nxt not in state:
                state[nxt] = "open"
                stack.append((nxt, iter(uses(nxt))))
    return order


def _substitute(where: Located, typed: dict[str, Expr]) -> Located:
    """Bound names replaced by their typed (shared) definitions, positions kept."""
    if not typed:
        return where
    done: dict[int, Located] = {}
    stack = [where]
    while stack:
        node = stack[-1]
        missing = [c for c in node.children if id(c) not in done]
        if missing:
            stack.extend(missing)
            continue
        stack.pop()
        if id(node) in done:
            continue
        if isinstance(node.expr, Symbol) and node.expr.name in typed:
            done[id(node)] = Located(typed[node.expr.name], node.start, node.end, (), 1)
            continue
        children = tuple(done[id(c)] for c in node.children)
        if all(a is b for a, b in zip(children, node.children, strict=True)):
            done[id(node)] = node
        else:
            expr = node.expr.rebuild(tuple(c.expr for c in children))
            done[id(node)] = Located(expr, node.start, node.end, children, node.depth)
    return done[id(where)]


_WRITTEN: OrderedDict[tuple, list[Located]] = OrderedDict()
_WRITTEN_LOCK = threading.Lock()
_WRITTEN_KEPT = 4
_WRITTEN_CHARS = 12_000
"""The sub-formulas of the last few texts ``parse`` read (at most 4, and at most 12 000 characters
in all; the last text is kept whatever its length), with their positions (untyped, as written):
locating an error in a derivation needs them, and reading a 10 kB text again took a tenth of the
time until a runaway's error. Not more: a 10 kB text's are about 8 000 live objects, which Python's
garbage collector walks in every later derivation."""


def _written_key(text: str, decls: dict) -> tuple | None:
    if not all(isinstance(v, str) for v in decls.values()):
        return None  # a declaration object: not remembered
    return (text, tuple(sorted(decls.items())))


def _remember_written(text: str, decls: dict, roots: list[Located]) -> None:
    key = _written_key(text, decls)
    if key is None:
        return
    with _WRITTEN_LOCK:
        _WRITTEN[key] = roots
        _WRITTEN.move_to_end(key)
        while len(_WRITTEN) > _WRITTEN_KEPT or (
                len(_WRITTEN) > 1 and sum(len(k[0]) for k in _WRITTEN) > _WRITTEN_CHARS):
            _WRITTEN.popitem(last=False)


def occurrences(text: str, /, **decls: str) -> list[tuple[Expr, int, int]]:
    """Every sub-formula written in ``text`` (body and the where-bindings it uses) as
    ``(expression, start, end)``, in the order of the text; the expressions are untyped
    (fresh sizes), for finding by structure where something happens (an error about a
    derived expression). A text ``parse`` read lately is not read again."""
    key = _written_key(text, decls)
    with _WRITTEN_LOCK:
        roots = _WRITTEN.get(key) if key is not None else None
    if roots is None:
        roots = _written_roots(text, decls)
    found: list[tuple[Expr, int, int]] = []
    stack: list[Located] = list(roots)
    while stack:
        node = stack.pop()
        found.append((node.expr, node.start, node.end))
        stack.extend(node.children)
    return sorted(found, key=lambda item: (item[1], -item[2]))
