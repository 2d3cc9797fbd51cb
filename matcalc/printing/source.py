"""Rule sources and notes for LaTeX: prose escaped, quoted formulas typeset as mathematics.

A formula in a source is written between backticks (``Matrix Cookbook eq. 16, `tr(A B) =
tr(B A)```, see ``rules/README.md``). It is typeset by matcalc's own parser and printer;
what is not matcalc syntax (``K_{m,n}``, ``<G, M>``, ``sum_ij G_ij``) by a small
typesetter that puts identifiers, scripts and operators in math mode. Sources without
backticks are read clause by clause as before (``[prose] a = b [for ...]``), and any word
carrying ``^``, ``_`` or ``|`` is typeset as mathematics rather than escaped.
"""

from __future__ import annotations

import re

from .tex import tex_text

_MATH_UNICODE = {"⊙": r"\odot", "⊗": r"\otimes", "⊘": r"\oslash", "×": r"\times",
                 "∘": r"\circ", "≥": r"\geq", "≤": r"\leq", "→": r"\to", "−": "-",
                 "‖": r"\|", "ᵀ": r"^{\top}", "λ": r"\lambda", "σ": r"\sigma",
                 "α": r"\alpha", "∈": r"\in", "ε": r"\varepsilon", "κ": r"\kappa", "·": r"\cdot"}

_GREEK = frozenset((
    "alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta", "iota", "kappa",
    "lambda", "mu", "nu", "xi", "pi", "rho", "sigma", "tau", "upsilon", "phi", "chi",
    "psi", "omega", "Gamma", "Delta", "Theta", "Lambda", "Xi", "Pi", "Sigma", "Phi", "Psi",
    "Omega"))

_TEX_OPERATORS = frozenset((
    "log", "exp", "det", "tanh", "sin", "cos", "tan", "sinh", "cosh", "max", "min"))

_RELATIONS = {"=": "=", "<": "<", ">": ">", "<=": r"\leq", ">=": r"\geq", "≤": r"\leq",
              "≥": r"\geq", "!=": r"\neq"}


def source_latex(source: str) -> str:
    """A rule's source (or a note) for LaTeX text mode: quoted formulas as ``$...$``."""
    pieces = source.split("`")
    if len(pieces) > 1 and len(pieces) % 2 == 1:
        return "".join(f"${math_latex(piece)}$" if i % 2 else _prose_latex(piece)
                       for i, piece in enumerate(pieces))
    return _legacy_source_latex(source)


def source_markdown(source: str) -> str:
    """A rule's source for Markdown: quoted formulas as ``$...$``, the prose escaped."""
    pieces = source.split("`")
    if len(pieces) == 1 or len(pieces) % 2 == 0:
        pieces = [source]
    return "".join(f"${math_latex(piece)}$" if i % 2 else _markdown_escape(piece)
                   for i, piece in enumerate(pieces))


def source_parts(source: str) -> list[dict[str, str]]:
    """A rule's source as alternating prose and formula parts (formulas as LaTeX math)."""
    pieces = source.split("`")
    if len(pieces) == 1 or len(pieces) % 2 == 0:
        return [{"text": source}]
    return [{"math": math_latex(piece)} if i % 2 else {"text": piece}
            for i, piece in enumerate(pieces) if piece]


def _markdown_escape(text: str) -> str:
    for ch in "\\`*_[]<>|$":
        text = text.replace(ch, "\\" + ch)
    return text


def math_latex(formula: str) -> str:
    """A formula as LaTeX math: matcalc's printer where it parses, side by side for
    relations and lists, the plain typesetter otherwise."""
    formula = formula.strip()
    whole = _formula(formula)
    if whole is not None:
        return whole
    parts = re.split(r"\s(=|<=|>=|!=|≤|≥|<|>)\s", formula)
    if len(parts) > 1:
        return " ".join(math_latex(p) if i % 2 == 0 else _RELATIONS[p]
                        for i, p in enumerate(parts))
    items = _top_level_split(formula, ",")
    if len(items) > 1:
        return ",\\ ".join(math_latex(item) for item in items)
    return _typeset(formula)


def _top_level_split(text: str, sep: str) -> list[str]:
    items, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        angle = ch == "<" and not text[i + 1:i + 2].isspace()  # <a, b>, not a < b
        depth += (ch in "([{" or angle) - (ch in ")]}" or (ch == ">" and i and
                                                          not text[i - 1].isspace()))
        if ch == sep and depth == 0:
            items.append(text[start:i])
            start = i + 1
    return items + [text[start:]]


_WORD = re.compile(r"[A-Za-z][A-Za-z0-9]*|[0-9]+(?:\.[0-9]+)?")
_SCRIPT = re.compile(r"-?(?:[A-Za-z0-9]+|[+*])")


def _typeset(text: str) -> str:
    """Math-mode LaTeX for a formula matcalc does not parse: identifiers, Greek names,
    function names, ``^``/``_`` scripts, ``||``, ``<a, b>`` and elementwise operators."""
    out: list[str] = []
    i = 0
    while i < len(text):
        if out and re.search(r"\\[A-Za-z]+$", out[-1]) and text[i].isalpha():
            out.append(" ")  # a control word before a letter: \lambda I, not \lambdaI
        ch = text[i]
        word = _WORD.match(text, i)
        if word:
            name, i = word.group(), word.end()
            if name == "d" and text[i:i + 1] == "(" and _closing(text, i) > 0:
                end = _closing(text, i)
                token, i = _differential(text[i + 1:end]), end + 1
            elif name == "sum" and text[i:i + 1] == "_":
                token = r"\sum"
            elif name in _GREEK:
                token = ("\\varepsilon" if name == "epsilon" else "\\" + name)
            elif name in _TEX_OPERATORS:
                token = "\\" + name
            elif len(name) > 1 and name.isalpha():
                token = rf"\operatorname{{{name}}}"
            else:
                token = name
            if out and out[-1][-1:].isdigit() and token[:1].isdigit():
                out.append(r"\,")
            out.append(token)
        elif ch in "^_":
            arg, i = _script(text, i + 1)
            out.append(f"{ch}{{{arg}}}")
        elif ch == "<" and i + 1 < len(text) and not text[i + 1].isspace() and ">" in text[i:]:
            end = text.index(">", i)
            inner = ",\\ ".join(math_latex(p) for p in _top_level_split(text[i + 1:end], ","))
            out.append(rf"\langle {inner} \rangle")
            i = end + 1
        elif text.startswith("...", i):
            out.append(r"\cdots ")
            i += 3
        elif text.startswith("||", i):
            out.append(r"\|")
            i += 2
        elif text.startswith(".*", i) or text.startswith("./", i):
            out.append(r" \odot " if text[i + 1] == "*" else r" \oslash ")
            i += 2
        else:
            out.append(_symbol(ch))
            i += 1
    return "".join(out).strip()


def _closing(text: str, i: int) -> int:
    """The index of the parenthesis closing the one at ``text[i]``, or -1."""
    depth = 0
    for j in range(i, len(text)):
        depth += (text[j] == "(") - (text[j] == ")")
        if depth == 0:
            return j
    return -1


def _differential(inner: str) -> str:
    """``d(X)`` as the rule tables print it: ``\\mathrm{d}X``, ``\\mathrm{d}\\operatorname{tr}(X)``,
    ``\\mathrm{d}(A B)``."""
    inner = inner.strip()
    call = re.match(r"[A-Za-z]\w*\(", inner)
    bare = re.fullmatch(r"[A-Za-z]\w*", inner) or (
        call is not None and _closing(inner, call.end() - 1) == len(inner) - 1)
    math = math_latex(inner)
    return r"\mathrm{d}" + (math if bare else rf"\left({math}\right)")


def _script(text: str, i: int) -> tuple[str, int]:
    """The argument of a ``^`` or ``_`` at ``text[i:]``: ``{...}``, ``T``, ``-1``, ``ij``."""
    if text[i:i + 1] == "{":
        depth = 0
        for j in range(i, len(text)):
            depth += (text[j] == "{") - (text[j] == "}")
            if depth == 0:
                return _typeset(text[i + 1:j]), j + 1
        return _typeset(text[i + 1:]), len(text)
    found = _SCRIPT.match(text, i)
    if not found:
        return "", i
    arg = found.group()
    return {"T": r"\top", "-T": r"-\top"}.get(arg, arg), found.end()


def _symbol(ch: str) -> str:
    if ch in "&%$#{}":
        return "\\" + ch
    if ch == "\\":
        return r"\backslash "
    if ch == "~":
        return r"\sim "
    if ord(ch) > 127:
        return _MATH_UNICODE.get(ch, "?")
    return " " if ch.isspace() else ch


def _prose_latex(text: str) -> str:
    """Prose for text mode; a word carrying ``^``, ``_`` or ``|`` is a formula, typeset."""
    return "".join(_word_latex(piece) for piece in re.split(r"(\s+)", text))


def _word_latex(word: str) -> str:
    if not re.search(r"[\^_|]", word):
        return tex_text(word)
    head = len(word) - len(word.lstrip("("))
    while head and word[head:].count("(") < word[head:].count(")"):
        head -= 1
    tail = len(word)
    while tail > head and (word[tail - 1] in ".,;:" or (
            word[tail - 1] == ")" and word[head:tail].count(")") > word[head:tail].count("("))):
        tail -= 1
    return (tex_text(word[:head]) + f"${math_latex(word[head:tail])}$"
            + tex_text(word[tail:]))


_PROSE_AFTER = ("for", "is", "defines", "with", "when", "if", "so")


def _formula(text: str) -> str | None:
    """``text`` typeset by matcalc's own parser and printer, or None when it is not a formula
    (single lowercase letters may be scalars: ``sigma(z) = 1 / (1 + exp(-z))``)."""
    from ..errors import MatcalcError
    from ..parse import parse

    if (not text or "'" in text or text.count("(") != text.count(")")
            or re.search(r"\b[A-Za-z]\(", text)  # d(X), f(w): not d times X
            or "×" in text):  # m×n is a size, not a product
        return None
    scalars = {n: "scalar" for n in set(re.findall(r"\b[a-z]\b", text))}
    for decls in ({}, scalars):
        try:
            return parse(text, **decls).latex()
        except (MatcalcError, RecursionError):
            continue
    return None


def _prose(words: list[str]) -> bool:
    return bool(words) and words[-1].isalpha() and len(words[-1]) >= 2 and \
        _formula(words[-1]) is None


def _identity(clause: str) -> tuple[str, str, str] | None:
    """(prose before, the identity as LaTeX, prose after) for a clause ``[prose] a = b [for
    ...]``; None unless every side parses whole."""
    pieces = re.split(r" (=|is|gives) ", clause)
    parts, joins = pieces[0::2], pieces[1::2]
    if len(parts) < 2:
        return None
    first, last = parts[0].split(" "), parts[-1].split(" ")
    cut = next((j for j, w in enumerate(last) if w in _PROSE_AFTER), len(last))
    sides = [_formula(p) for p in parts[1:-1]] + [_formula(" ".join(last[:cut]))]
    if any(side is None for side in sides):
        return None
    for i in range(len(first)):
        if i and not _prose(first[:i]):
            continue
        lhs = _formula(" ".join(first[i:]))
        if lhs is not None:
            math = lhs
            for join, side in zip(joins, sides, strict=True):
                math += " = " if join == "=" else rf" \text{{ {join} }} "
                math += side  # type: ignore[operator]
            return " ".join(first[:i]), math, " ".join(last[cut:])
    return None


def _legacy_source_latex(source: str) -> str:
    """A source without backticks, clause by clause: an identity whose sides all parse is
    typeset whole, other words as prose."""
    out: list[str] = []
    depth, clause = 0, ""
    for ch in source:
        depth += (ch == "(") - (ch == ")")
        if depth == 0 and ch in ";:,":
            out += [_clause_latex(clause), ch]
            clause = ""
        else:
            clause += ch
    out.append(_clause_latex(clause))
    return "".join(out)


def _clause_latex(clause: str) -> str:
    lead = clause[: len(clause) - len(clause.lstrip())]
    body = clause.strip()
    stop = "." if body.endswith(".") else ""
    found = _identity(body.removesuffix("."))
    if found is None:
        return _prose_latex(clause)
    before, math, after = found
    return (lead + (_prose_latex(before) + " " if before else "") + f"${math}$"
            + (" " + _prose_latex(after) if after else "") + stop)


__all__ = ["math_latex", "source_latex", "source_markdown"]
