"""The compiled detector core (mypyc, built by ``uv sync``): it is what runs, it is never stale,
and it gives byte for byte the outputs of the plain-Python sources."""

from __future__ import annotations

import importlib
import importlib.machinery
import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from detectors.compiled import check_fresh, compiled_modules, stale_modules

REPO = Path(__file__).resolve().parents[1]
EXT = importlib.machinery.EXTENSION_SUFFIXES[0]  # ".cpython-311-x86_64-linux-gnu.so" here
PLAIN_BUILD = os.environ.get("HATCH_BUILD_NO_HOOKS", "").lower() in {"1", "true"}


def _listed_for_compiling() -> list[str]:
    config = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    hook = config["tool"]["hatch"]["build"]["targets"]["wheel"]["hooks"]["mypyc"]
    return [Path(path).stem for path in hook["include"]]


def _package(tmp_path: Path, *names: str, checkout: bool = True) -> Path:
    package = tmp_path / "detectors"
    package.mkdir()
    if checkout:
        (tmp_path / "pyproject.toml").write_text("[project]\n", encoding="utf-8")
    for name in names:
        (package / name).write_text("", encoding="utf-8")
    return package


def _age(path: Path, seconds: float) -> None:
    stat = path.stat()
    os.utime(path, (stat.st_atime - seconds, stat.st_mtime - seconds))


@pytest.mark.skipif(PLAIN_BUILD, reason="built as plain Python (HATCH_BUILD_NO_HOOKS)")
def test_every_module_listed_for_compiling_runs_compiled_and_fresh() -> None:
    listed = _listed_for_compiling()
    assert {"brand", "buckets", "replay"} <= set(listed)
    assert sorted(compiled_modules()) == sorted(listed)
    for name in listed:
        module = importlib.import_module(f"detectors.{name}")
        assert module.__file__ is not None and module.__file__.endswith(EXT), name
    assert stale_modules() == []


def test_extension_names_are_read_for_this_interpreter_only(tmp_path: Path) -> None:
    package = _package(
        tmp_path,
        f"brand{EXT}",
        "brand.py",
        "replay.cpython-399-x86_64-linux-gnu.so",  # another interpreter's build
        "notes.txt",
    )
    assert compiled_modules(package) == {"brand": package / f"brand{EXT}"}


def test_a_source_edited_after_compiling_is_refused_at_import_naming_the_fix(
    tmp_path: Path,
) -> None:
    package = _package(tmp_path, f"brand{EXT}", "brand.py", f"text{EXT}", "text.py")
    _age(package / "brand.py", 10)
    _age(package / "text.py", 10)
    check_fresh(package)  # both compiled after their sources: fine

    _age(package / f"brand{EXT}", 60)  # brand.py edited since brand was compiled
    assert stale_modules(package) == ["brand.py"]
    with pytest.raises(ImportError, match=r"brand\.py changed .* Recompile with: uv sync"):
        check_fresh(package)


def test_an_installed_wheel_is_not_judged_by_its_file_times(tmp_path: Path) -> None:
    package = _package(tmp_path, f"brand{EXT}", "brand.py", checkout=False)
    _age(package / f"brand{EXT}", 60)
    assert stale_modules(package) == ["brand.py"]
    check_fresh(package)  # no pyproject.toml beside it: an install, not a checkout


SCRIPT = """
import sys
from detectors.episodes import canonical_json
from detectors.replay import replay
from tests.test_detectors_brand import _storm_stream
import detectors.brand
print(detectors.brand.__file__, file=sys.stderr)
for output in replay(_storm_stream()):
    print(canonical_json(output.to_dict()))
"""


def _run(root: Path) -> tuple[str, str]:
    env = {**os.environ, "PYTHONPATH": str(root)}
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout, done.stderr.strip()


@pytest.mark.skipif(PLAIN_BUILD, reason="built as plain Python (HATCH_BUILD_NO_HOOKS)")
def test_compiled_and_plain_python_give_byte_identical_outputs(tmp_path: Path) -> None:
    plain = tmp_path / "plain"
    shutil.copytree(REPO / "detectors", plain / "detectors", ignore=shutil.ignore_patterns("*.so"))
    shutil.copytree(REPO / "tests", plain / "tests", ignore=shutil.ignore_patterns("__pycache__"))
    (plain / "pyproject.toml").write_bytes((REPO / "pyproject.toml").read_bytes())

    compiled_out, compiled_file = _run(REPO)
    plain_out, plain_file = _run(plain)
    assert compiled_file.endswith(EXT) and plain_file.endswith("brand.py")
    assert '"type":"opened"' in compiled_out  # the stream holds a storm
    assert compiled_out.count("\n") > 5000  # and every closed bucket's summary
    assert compiled_out == plain_out
