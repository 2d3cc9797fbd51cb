"""Spellings of names: Greek letters, LaTeX wrappers, subscripts and letter runs."""

from __future__ import annotations

import re

GREEK = [
    "alpha", "beta", "gamma", "delta", "epsilon", "varepsilon", "zeta", "eta", "theta",
    "vartheta", "iota", "kappa", "lambda", "mu", "nu", "xi", "pi", "rho", "sigma", "tau",
    "upsilon", "phi", "varphi", "chi", "psi", "omega",
    "Gamma", "Delta", "Theta", "Lambda", "Xi", "Pi", "Sigma", "Upsilon", "Phi", "Psi", "Omega",
]
"""Greek names; each is a scalar by default."""

UNICODE_GREEK = dict(
    zip(
        "αβγδεζηθικλμνξπρστυφχψωΓΔΘΛΞΠΣΥΦΨΩ",
        [
            "alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta", "iota",
            "kappa", "lambda", "mu", "nu", "xi", "pi", "rho", "sigma", "tau", "upsilon", "phi",
            "chi", "psi", "omega",
            "Gamma", "Delta", "Theta", "Lambda", "Xi", "Pi", "Sigma", "Upsilon", "Phi", "Psi",
            "Omega",
        ],
        strict=True,
    )
)

_SUBSCRIPT = re.compile(r"_(\{([A-Za-z0-9]+)\}|([A-Za-z0-9]+))$")
_WRAPPER = re.compile(
    r"^\\(mathbf|boldsymbol|bm|mathrm|operatorname|text|mathop)\{([^{}]*)\}(_.*)?$"
)
_ACCENT = re.compile(r"^\\(hat|tilde|bar)\{([A-Za-z])\}$")
ACCENTS = ("hat", "tilde", "bar")
"""LaTeX accents read as a subscript: ``\\hat{y}`` is the name ``y_hat``."""
_LATIN_LETTER = re.compile(r"^[A-Za-z]$")
_SIMPLE = re.compile(r"^[A-Za-z][0-9]*$")
_GREEK_RE = re.compile(r"^(" + "|".join(sorted(GREEK, key=len, reverse=True)) + r")([0-9]*)$")


def normalize(raw: str) -> str:
    """Canonical spelling: strip LaTeX wrappers and braces, map Unicode Greek to names.

    ``\\mathbf{x}`` -> ``x``, ``\\lambda`` -> ``lambda``, ``λ`` -> ``lambda``,
    ``W_{2}`` -> ``W2`` (a digit subscript of one Latin letter is the name ``W2``, as
    typeset), ``x_i`` -> ``x_i``, ``\\hat{y}`` -> ``y_hat``.
    """
    m = _ACCENT.match(raw)
    if m:
        return f"{m.group(2)}_{m.group(1)}"
    m = _WRAPPER.match(raw)
    if m:
        raw = m.group(2) + (m.group(3) or "")
    if raw.startswith("\\"):
        raw = raw[1:]
    if raw and raw[0] in UNICODE_GREEK:
        raw = UNICODE_GREEK[raw[0]] + raw[1:]
    m = _SUBSCRIPT.search(raw)
    if m:
        base, sub = raw[: m.start()], m.group(2) or m.group(3)
        joined = _LATIN_LETTER.match(base) and sub.isdigit()
        raw = base + ("" if joined else "_") + sub
    return raw


def split_subscript(name: str) -> tuple[str, str]:
    """``W_2`` -> (``W``, ``2``); a name without subscript gives an empty second part."""
    base, sep, sub = name.partition("_")
    return base, sub if sep else ""


def is_greek(name: str) -> bool:
    """Whether a (normalized) name is a Greek scalar name such as ``lambda`` or ``alpha_1``."""
    base, _ = split_subscript(name)
    return bool(_GREEK_RE.match(base))


def is_simple(name: str) -> bool:
    """One letter with optional digits and subscript: a name that never splits."""
    base, _ = split_subscript(name)
    return bool(_SIMPLE.match(base))


def letter_run(name: str) -> list[str]:
    """Split a run of letters into one-letter names: ``Ax`` -> [A, x], ``W1x_2`` -> [W1, x_2]."""
    base, sub = split_subscript(name)
    pieces = re.findall(r"[A-Za-z][0-9]*", base)
    if sub:
        pieces[-1] += "_" + sub
    return pieces


def is_lower_word(name: str) -> bool:
    """A multi-letter all-lowercase word such as ``foo`` (an unknown function if called)."""
    base, _ = split_subscript(name)
    return len(base) > 1 and base.isalpha() and base.islower()
