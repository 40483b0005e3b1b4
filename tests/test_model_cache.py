"""A model cache the encoder cannot be built in: one line that says what to do, no traceback."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from streams.cli import main
from streams.sentiment.factory import ModelCacheError, load_scorer
from streams.settings import Settings


@pytest.fixture
def unbuildable_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A cache directory below a regular file (the tests run as root, so a read-only directory
    would not stop them): creating anything in it fails as a read-only cache does."""
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("x")
    cache = blocker / "cache"
    monkeypatch.setenv("STORMVARSEL_CACHE_DIR", str(cache))
    return cache


def test_models_install_in_a_cache_it_cannot_write_says_so(unbuildable_cache: Path) -> None:
    """It ended in a NotADirectoryError / PermissionError traceback from the export."""
    result = CliRunner().invoke(main, ["models", "install"])
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    assert (
        f"error: cannot prepare the sentiment encoder in the model cache: {unbuildable_cache}"
    ) in result.output
    assert "make STORMVARSEL_CACHE_DIR a writable directory" in result.output


def test_the_worker_scorer_in_a_cache_it_cannot_write_names_the_cache(
    unbuildable_cache: Path,
) -> None:
    """The worker exits on a scorer that does not load; its log line is this error."""
    with pytest.raises(ModelCacheError, match="STORMVARSEL_CACHE_DIR a writable directory"):
        load_scorer(Settings(), backend="e5")
