"""Small pieces the command-line modules share: option checks that need no settings or models.

Only click and the standard library are imported, so any CLI module can use this one without an
import cycle through :mod:`streams.cli`.
"""

from __future__ import annotations

import functools
import math
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import click

F = TypeVar("F", bound=Callable[..., Any])

#: The exit status of a command stopped by Ctrl-C (SIGINT): the shell's 128 + 2, so a script or
#: systemd can tell an interrupt from a failure (1) and from a usage error (2).
EXIT_INTERRUPTED = 130

_LEAVES = "stormvarsel.interrupt_leaves"


def exit_interrupted(state: str) -> NoReturn:
    """One line on stderr, ``interrupted; <state>``, and exit 130."""
    click.echo(f"interrupted; {state}", err=True)
    sys.exit(EXIT_INTERRUPTED)


def leaves_on_interrupt(state: str) -> None:
    """Say what a Ctrl-C from now on leaves behind, for :func:`interruptible` to print."""
    ctx = click.get_current_context(silent=True)
    if ctx is not None:
        ctx.meta[_LEAVES] = state


def interruptible(state: str) -> Callable[[F], F]:
    """Ctrl-C in the decorated command exits 130 with one line saying what it left: ``state``,
    or what the command gave :func:`leaves_on_interrupt` since. Without it click printed a bare
    "Aborted!" and exited 1, like a failure."""

    def decorate(func: F) -> F:
        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            ctx = click.get_current_context(silent=True)
            meta: dict[str, Any] = ctx.meta if ctx is not None else {}
            meta[_LEAVES] = state
            try:
                return func(*args, **kwargs)
            except KeyboardInterrupt:
                exit_interrupted(str(meta.get(_LEAVES, state)))

        wrapper.interrupt_state = state  # type: ignore[attr-defined]  # for the tests
        return wrapper  # type: ignore[return-value]

    return decorate


def confirm_or_stop(question: str) -> None:
    """Ask ``question``; "no" (or no answer: the input ended) exits 1 saying nothing was changed,
    Ctrl-C at the prompt is an interrupt (:func:`interruptible`). click's ``abort=True`` said a
    bare "Aborted!" for all three."""
    try:
        confirmed = click.confirm(question)
    except click.Abort as exc:
        click.echo("", err=True)  # the prompt's line was left open
        # click turns both into Abort "from None"; the context still tells them apart.
        if isinstance(exc.__context__, KeyboardInterrupt):
            raise KeyboardInterrupt from None
        confirmed = False
    if not confirmed:
        click.echo("Not confirmed: nothing was changed.", err=True)
        sys.exit(1)


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
