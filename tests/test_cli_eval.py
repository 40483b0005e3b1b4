"""`stormvarsel eval nab`: a --results-dir it cannot write is refused before the run."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from streams.cli import main


def test_unwritable_results_dir_is_refused_first_in_one_line(tmp_path: Path) -> None:
    """It was found only after scoring every file, and said "[Errno 20] Not a directory: ..."."""
    data = tmp_path / "data"
    data.mkdir()  # no NAB files: the run itself would fail, so this shows what is checked first
    labels = tmp_path / "labels.json"
    labels.write_text("{}", encoding="utf-8")
    a_file = tmp_path / "a-file"
    a_file.write_text("", encoding="utf-8")
    results = a_file / "results"
    args = ["eval", "nab", "--data", str(data), "--labels", str(labels), "--results-dir"]
    result = CliRunner().invoke(main, [*args, str(results)])
    assert result.exit_code == 2, result.output
    assert (
        f"Invalid value for --results-dir: cannot create the directory {a_file / 'results'} "
        "(Not a directory)"
    ) in result.output
    assert "Errno" not in result.output


def test_results_dir_is_created_with_its_parents(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    labels = tmp_path / "labels.json"
    labels.write_text("{}", encoding="utf-8")
    target = tmp_path / "new" / "results"
    result = CliRunner().invoke(
        main,
        ["eval", "nab", "--data", str(data), "--labels", str(labels), "--results-dir", str(target)],
    )
    assert result.exit_code == 2  # no data files
    assert "no NAB data files" in result.output
    assert target.is_dir()
