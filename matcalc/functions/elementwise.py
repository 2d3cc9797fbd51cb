"""Elementwise functions: applied entry by entry; the argument may be of any shape."""

from __future__ import annotations

from .record import Function, same_shape


def _elementwise(name: str, description: str, latex: str, numpy, sympy, code: str,
                 **extra) -> Function:
    return Function(name=name, description=description, family="elementwise", accepts="any",
                    shape=same_shape, latex=latex, numpy=numpy, sympy=sympy, code=code,
                    differential=f"d_{extra.pop('rule', name)}", **extra)


RECORDS = (
    _elementwise("exp", "exponential", r"\exp",
                 lambda np, z: np.exp(z), lambda sp, z: sp.exp(z), "{xp}.exp({0})", letter="e",
                 latex_bare=True),
    _elementwise("log", "natural logarithm", r"\log",
                 lambda np, z: np.log(z), lambda sp, z: sp.log(z), "{xp}.log({0})",
                 spellings=("ln",), letter="l", latex_bare=True),
    _elementwise("sqrt", "square root", r"\sqrt",
                 lambda np, z: np.sqrt(z), lambda sp, z: sp.sqrt(z), "{xp}.sqrt({0})",
                 latex_around=(r"\sqrt{", "}"), letter="r"),
    _elementwise("sin", "sine", r"\sin",
                 lambda np, z: np.sin(z), lambda sp, z: sp.sin(z), "{xp}.sin({0})",
                 latex_bare=True),
    _elementwise("cos", "cosine", r"\cos",
                 lambda np, z: np.cos(z), lambda sp, z: sp.cos(z), "{xp}.cos({0})",
                 latex_bare=True),
    _elementwise("tanh", "hyperbolic tangent", r"\tanh",
                 lambda np, z: np.tanh(z), lambda sp, z: sp.tanh(z), "{xp}.tanh({0})",
                 letter="h", latex_bare=True),
    # sigma(z) = (1 + tanh(z/2)) / 2 never overflows, unlike 1 / (1 + exp(-z)).
    _elementwise("sigma", "logistic sigmoid 1 / (1 + exp(-z))", r"\sigma",
                 lambda np, z: 0.5 * (1.0 + np.tanh(0.5 * z)),
                 lambda sp, z: 1 / (1 + sp.exp(-z)),
                 "0.5 * (1.0 + {xp}.tanh(0.5 * {0}))",
                 spellings=("sigmoid", "σ"), letter="s", rule="sigmoid"),
    _elementwise("relu", "rectifier max(z, 0)", r"\operatorname{relu}",
                 lambda np, z: np.maximum(z, 0.0), lambda sp, z: sp.Max(z, 0),
                 "{xp}.maximum({0}, 0.0)", code_overrides={"torch": "torch.clamp({0}, min=0.0)"},
                 letter="h", nonsmooth="relu(x) has a kink at 0"),
    _elementwise("softplus", "log(1 + exp(z))", r"\operatorname{softplus}",
                 # max(z, 0) + log1p(exp(-|z|)): as stable as logaddexp(0, z), and in NumPy
                 # several times faster (its logaddexp is a slow scalar loop)
                 lambda np, z: np.maximum(z, 0.0) + np.log1p(np.exp(-np.abs(z))),
                 lambda sp, z: sp.log(1 + sp.exp(z)),
                 "{xp}.maximum({0}, 0.0) + {xp}.log1p({xp}.exp(-{xp}.abs({0})))",
                 code_overrides={"torch": "torch.logaddexp(torch.zeros_like({0}), {0})"},
                 letter="h"),
    _elementwise("abs", "absolute value", r"\operatorname{abs}",
                 lambda np, z: np.abs(z), lambda sp, z: sp.Abs(z), "{xp}.abs({0})",
                 latex_around=(r"\left|", r"\right|"), nonsmooth="|x| has a kink at 0"),
    _elementwise("sign", "sign (-1, 0 or 1)", r"\operatorname{sign}",
                 lambda np, z: np.sign(z), lambda sp, z: sp.sign(z), "{xp}.sign({0})",
                 nonsmooth="sign(x) jumps at 0"),
    _elementwise("step", "Heaviside step: 1 where positive, else 0", r"\operatorname{step}",
                 lambda np, z: np.heaviside(z, 0.0), lambda sp, z: sp.Heaviside(z, 0),
                 "{xp}.heaviside({0}, {xp}.zeros_like({0}))", nonsmooth="step(x) jumps at 0"),
)
