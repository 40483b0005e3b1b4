"""The README's promises: two quick-start commands, CI runs the documented test command, and
every setting is documented."""

from __future__ import annotations

import re
import subprocess

from streams.settings import ENV_PREFIX, Settings
from tests.conftest import REPO

README = (REPO / "README.md").read_text(encoding="utf-8")


def _quick_start_commands() -> list[str]:
    section = README.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```bash\n(.*?)```", section, re.S)
    assert block, "the Quick start has no bash block"
    return [line.split("#", 1)[0].strip() for line in block.group(1).splitlines() if line.strip()]


def test_quick_start_is_exactly_two_commands() -> None:
    commands = _quick_start_commands()
    assert commands == ["bash deploy/local.sh demo", "bash deploy/local.sh test"]
    assert (REPO / "deploy" / "local.sh").exists()


def test_a_mistyped_quick_start_action_is_refused_before_anything_is_installed() -> None:
    """``bash deploy/local.sh tset`` ran the whole set-up (apt-get, uv sync, Kafka, the model)
    before it printed its usage line."""
    done = subprocess.run(
        ["bash", str(REPO / "deploy" / "local.sh"), "tset"],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin", "HOME": "/nonexistent"},
    )
    assert done.returncode == 2
    assert done.stderr == "usage: bash deploy/local.sh [demo|test|setup]\n"


def test_ci_runs_the_readme_test_command() -> None:
    test_command = _quick_start_commands()[1]
    ci = (REPO / ".ci" / "run").read_text(encoding="utf-8")
    assert test_command in ci.splitlines()


def test_every_setting_is_in_the_configuration_reference() -> None:
    reference = README.split("## Configuration reference", 1)[1]
    for name in Settings.model_fields:
        assert f"`{ENV_PREFIX}{name.upper()}`" in reference, name


def _code_spans(markdown: str) -> list[str]:
    """Every code block line and inline code span of a Markdown text."""
    blocks = re.findall(r"^```[^\n]*\n(.*?)^```", markdown, re.M | re.S)
    inline = re.findall(
        r"`([^`\n]+)`", re.sub(r"^```[^\n]*\n.*?^```", "", markdown, flags=re.M | re.S)
    )
    return [line for block in blocks for line in block.splitlines()] + inline


def test_readme_commands_after_setup_need_nothing_off_the_path() -> None:
    """`bash deploy/local.sh` installs uv into ~/.local/bin or a virtualenv of its own, neither on
    a login shell's PATH, so `uv run ...` said 'uv: command not found' after the quick start; the
    tools the README names afterwards must be the project virtualenv's."""
    uv_run = [span for span in _code_spans(README) if re.search(r"(^|[\s;&(])uv run\b", span)]
    assert not uv_run, uv_run
    tools = set(re.findall(r"\.venv/bin/([A-Za-z0-9_.-]+)", README))
    assert {"stormvarsel", "ruff", "mypy"} <= tools
    script = (REPO / "deploy" / "local.sh").read_text(encoding="utf-8")
    assert "uv sync --frozen" in script  # what puts them into .venv/bin
    venv = REPO / ".venv" / "bin"
    if venv.is_dir():
        missing = sorted(tool for tool in tools if not (venv / tool).exists())
        assert not missing, missing


def test_readme_command_list_names_every_command() -> None:
    """The list under 'After setup' left out ingest, sentiment, eval and models, so a reader of
    it did not learn how to send a file of mentions; every command and subcommand is listed."""
    import click

    from streams.cli import main

    section = README.split("After setup, the command line is", 1)[1]
    block = re.search(r"```\n(.*?)```", section, re.S)
    assert block, "no command list after 'After setup'"
    listed = set()
    for line in block.group(1).splitlines():
        words = line.split("  ", 1)[0].split()
        if words[:1] == ["stormvarsel"]:
            heads = [words[1].split("|")]
            if len(words) > 2 and not words[2].startswith(("-", "[")) and not words[2].isupper():
                heads.append(words[2].split("|"))
            listed |= {" ".join(p) for p in _product(heads)}
    wanted = set()
    for name, command in main.commands.items():
        if isinstance(command, click.Group):
            wanted |= {f"{name} {sub}" for sub in command.commands}
        else:
            wanted.add(name)
    assert not wanted - listed, sorted(wanted - listed)


def _product(parts: list[list[str]]) -> list[list[str]]:
    if not parts:
        return [[]]
    return [[head, *rest] for head in parts[0] for rest in _product(parts[1:])]


def test_configuration_reference_defaults_are_the_settings_defaults() -> None:
    """Each default the README's table states in code is the one Settings applies."""
    reference = README.split("## Configuration reference", 1)[1]
    rows = dict(re.findall(r"^\| `" + ENV_PREFIX + r"([A-Z0-9_]+)` \| ([^|]*) \|", reference, re.M))
    checked = 0
    for name, field in Settings.model_fields.items():
        default = field.default
        if default is None or default == "" or not isinstance(default, str | int | float):
            continue
        if isinstance(default, float) and default.is_integer():
            default = int(default)
        said = re.findall(r"`([^`]+)`", rows[name.upper()])
        if name == "runbook_url":
            assert str(default).endswith(said[0]), (name, said, default)
        else:
            assert said[:1] == [str(default)], (name, said, default)
        checked += 1
    assert checked >= 30
