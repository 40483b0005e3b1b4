"""Small pieces the command-line modules share: option checks that need no settings or models.

Only click and the standard library are imported, so any CLI module can use this one without an
import cycle through :mod:`streams.cli`.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import click


def check_writable_parent(path: Path, option: str) -> None:
    """Refuse an output ``path`` whose directory is missing or not writable, as a usage error
    naming ``option``: checked before long work, so a wrong path does not cost the run."""
    parent = path.resolve().parent
    if not parent.is_dir() or not os.access(parent, os.W_OK):
        raise click.BadParameter(f"cannot write a file in {parent}", param_hint=option)


class NonEmptyPath(click.Path):
    """``click.Path`` that refuses an empty value: click reads ``""`` as ``.``, so ``--out ""``
    (an unset shell variable) meant the current directory."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, str) and not value.strip():
            self.fail("is empty; name a path, or leave the option out", param, ctx)
        return super().convert(value, param, ctx)


class FiniteFloatRange(click.FloatRange):
    """``click.FloatRange`` that also refuses ``nan`` and ``inf``.

    ``FloatRange`` lets both through (``nan`` compares false to every bound), and a NaN timeout
    later crashed ``int(timeout * 1000)`` with a traceback. Its name is what a mistyped value
    is not ("'abc' is not a valid number", not "... a valid float range"), and the metavar.
    """

    name = "number"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        number = super().convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number.", param, ctx)
        return number


class WholeNumberRange(click.IntRange):
    """``click.IntRange`` whose error for text says "whole number", not "integer range"."""

    name = "whole number"

    def get_metavar(self, param: click.Parameter, ctx: click.Context) -> str | None:
        return "N"  # not the name: "--limit WHOLE NUMBER" read as two words


#: Seconds to wait for something: more than 0, finite.
TIMEOUT_SECONDS = FiniteFloatRange(min=0, min_open=True)
#: Seconds to keep retrying: 0 (one attempt) or more, finite.
RETRY_SECONDS = FiniteFloatRange(min=0)
