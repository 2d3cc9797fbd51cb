"""``matcalc minimize`` on the command line: data files, constraints, output, errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy.optimize import nnls

from matcalc.cli import main


def _problem(tmp_path):
    rng = np.random.default_rng(0)
    A, b = rng.standard_normal((20, 5)), rng.standard_normal(20)
    path = tmp_path / "problem.npz"
    np.savez(path, A=A, b=b)
    return A, b, str(path)


def test_minimize_nnls_prints_the_solution_and_saves_it(tmp_path, capsys):
    A, b, path = _problem(tmp_path)
    out = tmp_path / "solution.npz"
    status = main(["minimize", "||A x - b||_2^2", "--wrt", "x", "--data", path,
                   "-c", "x >= 0", "-o", str(out), "--tol", "1e-9"])
    text = capsys.readouterr().out
    assert status == 0
    assert "status: optimal" in text and "gradient wrt x: 2 A^T (A x - b)" in text
    x, norm = nnls(A, b)
    np.testing.assert_allclose(np.load(out)["x"], x, atol=1e-6)


def test_minimize_json_and_verbose(tmp_path, capsys):
    A, b, path = _problem(tmp_path)
    status = main(["minimize", "||A x - b||_2^2", "-w", "x", "--data", path, "-f", "json",
                   "--verbose", "--method", "Newton-CG"])
    captured = capsys.readouterr()
    data = json.loads(captured.out)
    assert status == 0 and data["status"] == "optimal" and data["method"] == "Newton-CG"
    np.testing.assert_allclose(data["solution"]["x"], np.linalg.lstsq(A, b, rcond=None)[0],
                               atol=1e-6)
    assert "iteration" in captured.err


@pytest.mark.filterwarnings("ignore:Diagonal number")  # SciPy's LU at trial points
def test_minimize_starting_point_from_the_data_file(tmp_path, capsys):
    path = tmp_path / "start.npz"
    np.savez(path, C=np.diag([1.0, 2.0]), S=np.eye(2))
    status = main(["minimize", "-logdet(S) + tr(S C)", "--wrt", "S", "--data", str(path),
                   "--decl", "C: symmetric"])
    text = capsys.readouterr().out
    assert status == 0, text
    assert "S = [[1.  0. ]\n [0.  0.5]]" in text or "0.5" in text


def test_minimize_errors_exit_2(tmp_path, capsys):
    _, _, path = _problem(tmp_path)
    assert main(["minimize", "||A x - b||_2^2", "--wrt", "x", "--data",
                 str(tmp_path / "missing.npz")]) == 2
    assert "cannot read the data file" in capsys.readouterr().err
    assert main(["minimize", "||A x - b||_2^2 + exp(1^T relu(x))", "--wrt", "x", "--data",
                 path]) == 2
    assert "not differentiable" in capsys.readouterr().err
    assert main(["minimize", "||A x - b||_2^2", "--wrt", "x", "--data", path,
                 "-c", "x >="]) == 2
    err = capsys.readouterr().err
    assert "x >=" in err and "^" in err
    assert main(["minimize", "||A x - b||_2^2", "--wrt", "x"]) == 2
    assert "no data for" in capsys.readouterr().err


def test_minimize_not_optimal_exits_1(tmp_path, capsys):
    path = tmp_path / "m.npz"
    np.savez(path, m=np.array([1.0, -1.0]))
    assert main(["minimize", "m^T x", "--wrt", "x", "--data", str(path)]) == 1
    assert "unbounded" in capsys.readouterr().out
