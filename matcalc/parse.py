"""Text and LaTeX to typed expressions: the grammar, one transformer, friendly errors."""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass, field
from fractions import Fraction
from functools import cache

from lark import Lark, Token, Transformer
from lark.exceptions import LarkError, UnexpectedCharacters, UnexpectedInput, UnexpectedToken

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
    Pow,
    Symbol,
    Transpose,
    mul_dims,
)
from .functions import FUNCTIONS, canonical_function, known_function_names
from .shapes import Decl, Dims, Inference, make_decl

MAX_LENGTH = 100_000
"""Longest accepted input, in characters."""
MAX_DEPTH = 200
"""Deepest accepted nesting of operations."""


@cache
def _lark() -> Lark:
    grammar = (data_path("grammar") / "matcalc.lark").read_text(encoding="utf-8")
    parser = Lark(
        grammar,
        parser="lalr",
        lexer="basic",
        start=["expr", "decls"],
        transformer=_Builder(),
        postlex=_KeepLexerTerminals(),
        cache=True,  # building the LALR tables takes ~0.5 s; lark keeps them in a temp file
        maybe_placeholders=False,
    )
    # Lark.lex() builds a new lexer on every call when a parser is attached (a third of
    # the time of a parse); build it once.
    parser.lexer = parser._build_lexer()
    return parser


class _KeepLexerTerminals:
    """Lark drops terminals no rule uses; these are turned into others by ``_postlex``."""

    always_accept = ("DBAR", "BAR", "NORM_LEFT", "NORM_RIGHT", "ABS_LEFT", "ABS_RIGHT", "WHERE")

    def process(self, stream):
        return stream


# ---------------------------------------------------------------------------- context


@dataclass
class _Context:
    """Per-parse state shared by the post-lexer and the transformer."""

    text: str
    decls: dict[str, Decl]
    bound: set[str] = field(default_factory=set)
    dims: Dims = field(default_factory=Dims)
    symbols: dict[str, Symbol] = field(default_factory=dict)
    spans: dict[int, tuple[int, int]] = field(default_factory=dict)
    depths: dict[int, int] = field(default_factory=dict)
    offset: int = 0
    bars: list[str] = field(default_factory=list)  # open | and || (post-lexer state)

    def error(self, message: str, pos: int | None, hint: str | None = None, cls=ParseError):
        raise cls(message, text=self.text, pos=pos, hint=hint)

    def locate(self, e: Expr) -> int | None:
        span = self.spans.get(id(e))
        return span[0] if span else None

    def symbol(self, name: str) -> Expr:
        if name in self.symbols:
            s = self.symbols[name]
            return Symbol(s.name, s.dims, s.props)
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
        return Symbol(s.name, s.dims, s.props)

    def keeps_whole(self, name: str) -> bool:
        return (
            name in self.decls
            or name in self.bound
            or names.is_greek(name)
            or names.is_simple(name)
            or canonical_function(name) is not None
        )


_CONTEXT: ContextVar[_Context] = ContextVar("matcalc_parse_context")


# ---------------------------------------------------------------------------- post-lexer

_OPERAND_END = {"NAME", "NUMBER", "ONES", "ZEROS", "RPAREN", "RBRACE", "NORM_CLOSE", "ABS_CLOSE",
                "TRANSPOSE", "NORM_SUB"}
_CALL_NAME = re.compile(r"^(.*?)\s*(\(|\\left\()$", re.S)


def _split_token(tok: Token, value: str, type_: str, start: int, end: int) -> Token:
    return Token(type_, value, start_pos=start, line=tok.line, column=tok.column,
                 end_pos=end, end_line=tok.end_line, end_column=tok.end_column)


def _postlex(ctx: _Context, tokens: Iterator[Token]) -> Iterator[Token]:
    """Open/close bars, split letter runs, decide calls versus products."""
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
        and name not in ctx.decls
        and name not in ctx.bound
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
    if fn is not None and name not in ctx.decls and name not in ctx.bound:
        yield Token.new_borrow_pos("CALL", fn, tok)
        return
    is_latex_command = raw.startswith("\\") and not raw.startswith("\\math")
    if (
        name in ctx.decls
        or name in ctx.bound
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


# ---------------------------------------------------------------------------- transformer

_MUL_OPS = {"*", "@", "·", "×", "\\cdot", "\\times"}
_HADAMARD_OPS = {".*", "⊙", "∘", "\\odot", "\\circ"}
_KRON_OPS = {"⊗", "\\otimes"}


def _make(e: Expr, *parts: object) -> Expr:
    """Record the span and depth of a new node; reject nesting beyond MAX_DEPTH."""
    ctx = _CONTEXT.get()
    start, end, d = None, None, 0
    for p in parts:
        if isinstance(p, Token):
            s, t, dp = p.start_pos, p.end_pos, 0
        elif isinstance(p, Expr):
            span = ctx.spans.get(id(p))
            s, t = span if span else (None, None)
            dp = ctx.depths.get(id(p), 1)
        else:
            continue
        if s is not None:
            start = s if start is None else min(start, s)
            end = t if end is None else max(end, t)
        d = max(d, dp)
    if start is not None:
        ctx.spans[id(e)] = (start + ctx.offset, end + ctx.offset)
    ctx.depths[id(e)] = d + 1
    if d + 1 > MAX_DEPTH:
        ctx.error(
            f"the formula is nested more than {MAX_DEPTH} levels deep",
            (start or 0) + ctx.offset,
            hint="split it with where-bindings (where h = ...)",
        )
    return e


MAX_DIGITS = 1000
"""Longest number accepted, in decimal digits (exact arithmetic on larger ones is too slow)."""


class _Builder(Transformer):
    """The one transformer from parse tree to AST (applied inline by the LALR parser)."""

    # -- atoms -----------------------------------------------------------------
    def name(self, items):
        (tok,) = items
        ctx = _CONTEXT.get()
        return _make(ctx.symbol(str(tok)), tok)

    def number(self, items):
        (tok,) = items
        mantissa, _, exponent = str(tok).lower().partition("e")
        digits = len(mantissa.replace(".", "").lstrip("0"))
        if len(exponent) > 6 or digits + abs(int(exponent or 0)) > MAX_DIGITS:
            _CONTEXT.get().error(f"the number {str(tok)[:20]}... is too long or too large",
                                 tok.start_pos, f"numbers have at most {MAX_DIGITS} digits")
        return _make(Number(Fraction(str(tok))), tok)

    def ones(self, items):
        (tok,) = items
        return _make(Number(Fraction(1)), tok)

    def zeros(self, items):
        (tok,) = items
        return _make(Number(Fraction(0)), tok)

    def group(self, items):
        return items[1]

    def call(self, items):
        tok, args = items[0], items[1]
        name = str(tok)
        if name == "inv":
            self._arity(tok, args, 1)
            return _make(Pow(args[0], Number(Fraction(-1))), tok, *args, items[-1])
        if name == "kron":
            self._arity(tok, args, 2)
            return _make(Kron(args[0], args[1]), tok, *args, items[-1])
        if name == "commutation":
            self._arity(tok, args, 2)
            m, n = (_dimension(a, tok) for a in args)
            return _make(Commutation(m, n), tok, *args, items[-1])
        self._arity(tok, args, FUNCTIONS[name].arity)
        if name == "log" and isinstance(args[0], Call) and args[0].name == "det":
            pass  # log(det(X)) stays as written; simplification knows it is logdet(X)
        return _make(Call(name, tuple(args)), tok, *args, items[-1])

    def bare_call(self, items):
        tok, arg = items
        name = canonical_function(names.normalize(str(tok)))
        return _make(Call(name, (arg,)), tok, arg)

    def _arity(self, tok: Token, args: list, n: int) -> None:
        if len(args) != n:
            _CONTEXT.get().error(
                f"{tok} takes {n} argument{'s' if n > 1 else ''}, got {len(args)}",
                tok.start_pos + _CONTEXT.get().offset,
            )

    def arguments(self, items):
        return [i for i in items if isinstance(i, Expr)]

    def norm(self, items):
        arg = items[1]
        p = None
        if len(items) > 3:
            sub = str(items[3])
            p = "F" if "F" in sub else ("1" if "1" in sub else "2")
        return _make(Norm(arg, p), *items)

    def abs(self, items):
        return _make(Call("abs", (items[1],)), *items)

    def frac(self, items):
        exprs = [i for i in items if isinstance(i, Expr)]
        return self._divide(exprs[0], exprs[1], items[0], items)

    def sqrt(self, items):
        arg = items[2]
        return _make(Call("sqrt", (arg,)), *items)

    # -- postfix ---------------------------------------------------------------
    def transpose(self, items):
        return _make(Transpose(items[0]), *items)

    def inverse_transpose(self, items):
        return _make(Transpose(Pow(items[0], Number(Fraction(-1)))), *items)

    def power(self, items):
        base, exponent = items[0], items[2]
        return _make(Pow(base, _fold_negative(exponent)), *items)

    def elempow(self, items):
        base, exponent = items[0], items[2]
        return _make(ElemPow(base, _fold_negative(exponent)), *items)

    # -- unary and sums --------------------------------------------------------
    def neg(self, items):
        return _make(Neg(items[1]), *items)

    def pos(self, items):
        return items[1]

    def sum(self, items):
        terms: list[Expr] = [items[0]]
        for sign, term in zip(items[1::2], items[2::2], strict=True):
            terms.append(_make(Neg(term), sign, term) if sign.type == "MINUS" else term)
        return _make(Add(tuple(terms)), *items)

    # -- products: one level, left to right ------------------------------------
    def product(self, items):
        current: Expr = items[0]
        pending: list[Expr] = []  # factors of the Mul or Hadamard being built
        pending_kind: str | None = None
        i = 1
        tokens: list[object] = [items[0]]

        def flush() -> Expr:
            nonlocal pending, pending_kind
            if pending_kind is None:
                return current
            node = Mul(tuple(pending)) if pending_kind == "mul" else Hadamard(tuple(pending))
            pending, pending_kind = [], None
            return _make(node, *tokens)

        while i < len(items):
            op = None
            if isinstance(items[i], Token):
                op = str(items[i])
                tokens.append(items[i])
                i += 1
            factor = items[i]
            tokens.append(factor)
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
            if kind == "kron":
                current = _make(Kron(current, factor), *tokens)
            elif kind == "ediv":
                current = _make(ElemDiv(current, factor), *tokens)
            else:
                current = self._divide(current, factor, op, tokens)
        return flush()

    def _divide(self, num: Expr, den: Expr, where: object, parts) -> Expr:
        if isinstance(num, Number) and isinstance(den, Number):
            if den.value == 0:
                ctx = _CONTEXT.get()
                pos = ctx.spans.get(id(den), (None,))[0]
                ctx.error("division by zero", pos)
            return _make(Number(num.value / den.value), *parts)
        return _make(Div(num, den), *parts)

    # -- declarations ----------------------------------------------------------
    def decls(self, items):
        return [i for i in items if not isinstance(i, Token)]

    def declare(self, items):
        return ("declare", items[0], items[2])

    def bind(self, items):
        return ("bind", items[0], items[2])

    def decl_type(self, items):
        props = [str(t) for t in items if isinstance(t, Token) and t.type == "PROPERTY"]
        kinds = [str(t) for t in items if isinstance(t, Token) and t.type == "KIND"]
        dims = next((i for i in items if isinstance(i, list)), [])
        tok = items[0] if items and isinstance(items[0], Token) else None
        try:
            return make_decl(props, kinds[0] if kinds else None, dims)
        except DeclarationError as err:
            ctx = _CONTEXT.get()
            pos = (tok.start_pos + ctx.offset) if tok is not None else None
            ctx.error(err.message, pos, err.hint, DeclarationError)

    def dims(self, items):
        out = []
        for t in items:
            if isinstance(t, Token) and t.type in ("NAME", "NUMBER"):
                out.append(int(t) if t.type == "NUMBER" else str(t))
        return out


def _dimension(e: Expr, tok: Token) -> Dim:
    """A size written as an argument of ``commutation(m, n)``: a name, a number or a product."""
    if isinstance(e, Number) and e.value.denominator == 1 and e.value > 0:
        return int(e.value)
    if isinstance(e, Symbol):
        _CONTEXT.get().symbols.pop(e.name, None)  # a size, not a variable of the formula
        return e.name
    if isinstance(e, Mul) and e.factors:
        parts = [_dimension(f, tok) for f in e.factors]
        out: Dim = parts[0]
        for p in parts[1:]:
            out = mul_dims(out, p)
        return out
    _CONTEXT.get().error("commutation(m, n) takes two sizes (names or positive integers)",
                         tok.start_pos + _CONTEXT.get().offset,
                         hint="for example commutation(m, n) or commutation(2, 3)")
    raise AssertionError  # unreachable: error raises


def _fold_negative(e: Expr) -> Expr:
    if isinstance(e, Neg) and isinstance(e.arg, Number):
        return Number(-e.arg.value)
    return e


# ---------------------------------------------------------------------------- driver

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
        pos = (tok.start_pos if tok.start_pos is not None else len(text)) + ctx.offset
        if tok.type == "$END":
            pos = len(text) + ctx.offset
            what = "the formula ends too early"
        else:
            what = f"unexpected {tok.value!r}"
        expected = set(err.expected or ())
        hint = None
        # LALR states are shared, so a closing bar may be "expected" with none open.
        if "NORM_CLOSE" in expected and ctx.bars and ctx.bars[-1] == "NORM":
            hint = "a norm opened with || is not closed"
        elif "ABS_CLOSE" in expected and ctx.bars and ctx.bars[-1] == "ABS":
            hint = "an absolute value opened with | is not closed"
        elif tok.type in ("EQUALS", "COLON"):
            hint = "':' and '=' belong in declarations: x^T A x where A: symmetric, s = softmax(x)"
        elif "RPAREN" in expected and tok.type in ("$END", "COMMA"):
            hint = "a parenthesis is not closed"
        elif tok.type == "RPAREN":
            hint = "this parenthesis closes nothing"
        return ParseError(
            f"{what}; expected {_describe_expected(expected)}",
            text=ctx.text,
            pos=pos,
            hint=hint,
        )
    return ParseError(str(err), text=ctx.text)


def _run(ctx: _Context, text: str, start: str, offset: int):
    parser = _lark()
    ctx.offset = offset
    token = _CONTEXT.set(ctx)
    try:
        interactive = parser.parse_interactive(start=start)
        last = None
        for tok in _postlex(ctx, parser.lex(text, dont_ignore=False)):
            interactive.feed_token(tok)
            last = tok
        return interactive.feed_eof(last)
    except UnexpectedInput as err:
        raise _friendly(ctx, err, text) from None
    except MatcalcError:
        raise
    except LarkError as err:  # pragma: no cover - lark wraps callback errors
        if isinstance(err.__context__, MatcalcError):
            raise err.__context__ from None
        orig = getattr(err, "orig_exc", None)
        if isinstance(orig, MatcalcError):
            raise orig from None
        raise ParseError(f"cannot read the formula: {err}", text=ctx.text) from None
    finally:
        _CONTEXT.reset(token)


def _split_where(text: str) -> tuple[str, str | None, int]:
    """The formula and the declaration part after the top-level ``where``."""
    parser = _lark()
    try:
        for tok in parser.lex(text, dont_ignore=False):
            if tok.type == "WHERE":
                return text[: tok.start_pos], text[tok.end_pos :], tok.end_pos
    except UnexpectedInput:
        pass  # the full parse reports it with context
    return text, None, 0


def _decl_from_keyword(name: str, value: object) -> Decl:
    if isinstance(value, Decl):
        return value
    if not isinstance(value, str):
        raise DeclarationError(
            f"declaration of {name} must be a string such as 'symmetric matrix(n, n)', "
            f"got {type(value).__name__}"
        )
    ctx = _Context(text=value, decls={})
    items = _run(ctx, f"a: {value}", "decls", 0)
    return items[0][2]


def parse(text: str, /, **decls: str) -> Expr:
    """Read a formula (text or LaTeX) into a typed expression.

    Keyword arguments declare kinds, as the ``where`` clause does:
    ``parse("x^T A x", A="symmetric matrix")``.
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
    body, decl_text, decl_offset = _split_where(text)
    declared: dict[str, Decl] = {}
    for key, value in decls.items():
        declared[names.normalize(key)] = _decl_from_keyword(key, value)
    ctx = _Context(text=text, decls=declared)
    bindings: dict[str, Expr] = {}
    binding_pos: dict[str, int] = {}
    if decl_text is not None:
        if not decl_text.strip():
            ctx.error("nothing after where", len(text), "for example: where A: symmetric")
        # Names declared or bound after `where` are known before the formula is read.
        for m in re.finditer(r"([^\s,:=]+)\s*[:=]", decl_text):
            name = names.normalize(m.group(1))
            ctx.bound.add(name)
        entries = _run(ctx, decl_text, "decls", decl_offset)
        ctx.bound.clear()
        for kind, name_tok, value in entries:
            name = names.normalize(str(name_tok))
            if name in declared or name in bindings:
                ctx.error(f"{name} is declared twice", name_tok.start_pos + decl_offset,
                          cls=DeclarationError)
            if kind == "declare":
                declared[name] = value
            else:
                bindings[name] = value
                binding_pos[name] = name_tok.start_pos + decl_offset
        ctx.decls = declared
        ctx.bound = set(bindings)
        ctx.symbols = {k: v for k, v in ctx.symbols.items() if k not in declared}
    expr = _run(ctx, body, "expr", 0)
    if bindings:
        expr = _inline_bindings(ctx, expr, bindings, binding_pos)
    reserved = {d for decl in declared.values() for d in decl.dims if isinstance(d, str)}
    inference = Inference(ctx.dims, ctx.locate, text, reserved)
    typed = inference.elaborate(expr)
    return inference.finish(typed)


def _inline_bindings(
    ctx: _Context, expr: Expr, bindings: dict[str, Expr], positions: dict[str, int]
) -> Expr:
    """Replace bound names (``where s = softmax(x)``) by their definitions."""
    resolved: dict[str, Expr] = {}

    def resolve(name: str, stack: tuple[str, ...]) -> Expr:
        if name in resolved:
            return resolved[name]
        if name in stack:
            ctx.error(f"the binding of {name} refers to itself", positions.get(name),
                      cls=DeclarationError)
        resolved[name] = substitute(bindings[name], stack + (name,))
        return resolved[name]

    def substitute(e: Expr, stack: tuple[str, ...]) -> Expr:
        if isinstance(e, Symbol) and e.name in bindings:
            return resolve(e.name, stack)
        if not e.children:
            return e
        new = e.map_children(lambda c: substitute(c, stack))
        if new is not e and id(e) in ctx.spans:
            ctx.spans[id(new)] = ctx.spans[id(e)]
        return new

    return substitute(expr, ())
