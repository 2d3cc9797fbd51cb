"""Where matcalc's data folders (``grammar/``, ``rules/``) live."""

from __future__ import annotations

from pathlib import Path


def data_path(folder: str) -> Path:
    """Where ``grammar/`` or ``rules/`` lives: inside the installed package, or the checkout."""
    inside = Path(__file__).parent / folder
    return inside if inside.is_dir() else Path(__file__).parent.parent / folder
