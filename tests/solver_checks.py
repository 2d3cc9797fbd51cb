"""What the minimize tests ask of a solution: its objective within RTOL of the reference
solver's, and a KKT residual below KKT."""

from __future__ import annotations

RTOL = 1e-6
KKT = 1e-6


def close(value: float, reference: float) -> bool:
    """``value`` within RTOL of ``reference`` (absolutely, for a reference below 1)."""
    return abs(value - reference) <= RTOL * max(1.0, abs(reference))
