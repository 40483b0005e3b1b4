"""`stormvarsel sentiment train`: mistakes in the data are found before the encoder is built."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from streams.cli import main


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--label-col", "sentiment"], "--label-col sentiment: no such column in data.csv"),
        (["--text-col", "body"], "--text-col body: no such column in data.csv"),
    ],
)
def test_a_wrong_column_is_refused_before_the_encoder_is_built(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, args: list[str], says: str
) -> None:
    """It was found only after the encoder was prepared and exported for the layers (about 30 s
    the first time, and again for every new --layers)."""
    cache = tmp_path / "cache"
    monkeypatch.setenv("STORMVARSEL_CACHE_DIR", str(cache))
    data = tmp_path / "data.csv"
    data.write_text("text,label\nbra,positive\ndårlig,negative\n", encoding="utf-8")
    out = tmp_path / "head.npz"
    result = CliRunner().invoke(
        main, ["sentiment", "train", "--data", str(data), "--out", str(out), *args]
    )
    assert result.exit_code == 1, result.output
    assert f"error: {says}" in result.output
    assert not (cache / "models").exists()  # nothing was built
    assert not out.exists()
