"""Option checks shared by the command-line modules (streams.cli_support)."""

from __future__ import annotations

from pathlib import Path

import click
import pytest

from streams.cli_support import check_writable_parent


def test_writable_parent_accepts_a_new_file_in_an_existing_directory(tmp_path: Path) -> None:
    check_writable_parent(tmp_path / "new.json", "--out")


@pytest.mark.parametrize("parent", ["no-such-dir", "a-file"])
def test_writable_parent_names_the_option_and_the_directory(tmp_path: Path, parent: str) -> None:
    (tmp_path / "a-file").write_text("", encoding="utf-8")
    target = tmp_path / parent / "out.json"
    with pytest.raises(click.BadParameter) as info:
        check_writable_parent(target, "--predictions")
    assert info.value.param_hint == "--predictions"
    assert info.value.message == f"cannot write a file in {target.parent}"
