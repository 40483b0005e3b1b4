"""Small pieces the command-line modules share: option checks that need no settings or models.

Only click and the standard library are imported, so any CLI module can use this one without an
import cycle through :mod:`streams.cli`.
"""

from __future__ import annotations

import os
from pathlib import Path

import click


def check_writable_parent(path: Path, option: str) -> None:
    """Refuse an output ``path`` whose directory is missing or not writable, as a usage error
    naming ``option``: checked before long work, so a wrong path does not cost the run."""
    parent = path.resolve().parent
    if not parent.is_dir() or not os.access(parent, os.W_OK):
        raise click.BadParameter(f"cannot write a file in {parent}", param_hint=option)
