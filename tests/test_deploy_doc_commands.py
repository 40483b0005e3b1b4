"""Every ``stormvarsel ...`` command the runbooks and the deployment docs quote exists, with its
options: an operator following a runbook during an outage should not meet "No such command".

Commands are taken from inline code and code blocks; each is walked down the CLI's own click
command tree (subcommands, ``a|b`` alternatives) and each ``--option`` it quotes must be an option
of the command it reaches.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import click
import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = [
    ROOT / "docs" / "runbooks.md",
    ROOT / "docs" / "observability.md",
    ROOT / "docs" / "alerts.md",
    ROOT / "docs" / "ingest.md",
    ROOT / "docs" / "mentions.md",
    ROOT / "docs" / "replay.md",
    ROOT / "docs" / "reliability.md",
    ROOT / "README.md",
]
_INLINE = re.compile(r"`([^`\n]+)`")
_BLOCK = re.compile(r"^```[^\n]*\n(.*?)^```", re.M | re.S)
_COMMAND = re.compile(r"(?:^|(?<=[\s;&(]))stormvarsel (?=(.*))")


def quoted_commands(markdown: str) -> Iterator[str]:
    """The words after each ``stormvarsel`` in code, up to the end of that command."""
    blocks = [re.sub(r"\s*\\\n\s*", " ", block) for block in _BLOCK.findall(markdown)]
    code = [line for block in blocks for line in block.splitlines()]
    code += _INLINE.findall(_BLOCK.sub("", markdown))
    for text in code:
        for match in _COMMAND.finditer(text):
            # A table of commands describes each after two spaces; a shell line ends at
            # a comment, a pipe or the next command.
            words = re.split(r"\s{2,}|\s#|\s&&|\s\|\s|;", match.group(1).strip())[0]
            if words:
                yield words


def check(words: str, root: click.Command) -> list[str]:
    """What in ``stormvarsel <words>`` the CLI does not have (empty when all of it exists)."""
    tokens = words.split()
    commands = [root]
    while tokens and all(isinstance(c, click.Group) for c in commands):
        names = tokens[0].split("|")
        groups = [c for c in commands if isinstance(c, click.Group)]
        found = [g.commands.get(name) for g in groups for name in names]
        if tokens[0].startswith(("-", "[", "<", ".")) or tokens[0].isupper():
            break
        missing = [name for name, command in zip(names, found, strict=True) if command is None]
        if missing:
            return [f"no command {' '.join(missing)!r} in `stormvarsel {words}`"]
        commands = [c for c in found if c is not None]
        tokens = tokens[1:]
    problems = []
    for token in tokens:
        option = re.match(r"\[?(--[a-z][a-z0-9-]*)", token)
        if not option:
            continue
        for command in commands:
            known = {opt for param in command.params for opt in param.opts + param.secondary_opts}
            if option.group(1) not in known | {"--help"}:
                problems.append(f"`stormvarsel {words}`: {command.name} has no {option.group(1)}")
    return problems


def cli() -> click.Command:
    from streams.cli import main

    return main


def test_commands_are_found_and_checked() -> None:
    runbooks = list(quoted_commands((ROOT / "docs" / "runbooks.md").read_text(encoding="utf-8")))
    assert "kafka status" in runbooks
    root = cli()
    assert check("kafka start|stop|status", root) == []
    assert check("topics create --timeout 120", root) == []
    assert check("kafka restart", root)
    assert check("topics create --wait 5", root)
    assert list(quoted_commands("run `stormvarsel a --b x && stormvarsel c` then")) == [
        "a --b x",
        "c",
    ]


@pytest.mark.parametrize("path", DOCS, ids=lambda path: path.name)
def test_quoted_commands_exist(path: Path) -> None:
    root = cli()
    problems = [
        problem
        for words in quoted_commands(path.read_text(encoding="utf-8"))
        for problem in check(words, root)
    ]
    assert not problems, f"{path.name}:\n" + "\n".join(problems)
