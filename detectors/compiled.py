"""Which detector modules run compiled, and a guard against running stale compiled code.

Building the project (``uv sync``; see ``[tool.hatch.build.targets.wheel.hooks.mypyc]`` in
pyproject.toml) compiles the detector core's hot path with mypyc into C extensions that sit
beside their sources. Python imports an extension before a source of the same name, so in a
source checkout an edit to, say, ``brand.py`` would silently not run until the next build:
:func:`check_fresh` refuses that at import instead, naming the command that rebuilds.
"""

from __future__ import annotations

import importlib.machinery
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
REBUILD = "uv sync (or: bash deploy/local.sh setup)"


def compiled_modules(package_dir: Path = PACKAGE_DIR) -> dict[str, Path]:
    """Module name -> extension file, for the package's modules this interpreter would load
    compiled."""
    found: dict[str, Path] = {}
    for path in sorted(package_dir.iterdir()):
        for suffix in importlib.machinery.EXTENSION_SUFFIXES:
            if path.name.endswith(suffix):
                name = path.name[: -len(suffix)]
                # Another interpreter's build ("brand.cpython-312-….so") leaves a dotted name.
                if name.isidentifier():
                    found.setdefault(name, path)
                break
    return found


def stale_modules(package_dir: Path = PACKAGE_DIR) -> list[str]:
    """Sources changed after their module was compiled (the compiled one would still run)."""
    stale = []
    for name, extension in compiled_modules(package_dir).items():
        source = package_dir / f"{name}.py"
        if source.exists() and source.stat().st_mtime > extension.stat().st_mtime:
            stale.append(f"{name}.py")
    return stale


def check_fresh(package_dir: Path = PACKAGE_DIR) -> None:
    """Refuse to import a source checkout whose compiled modules are older than their sources.

    An installed wheel is never edited in place (and its files' times say nothing), so only a
    checkout, a package beside its ``pyproject.toml``, is checked.
    """
    if not (package_dir.parent / "pyproject.toml").is_file():
        return
    stale = stale_modules(package_dir)
    if stale:
        raise ImportError(
            f"detectors: {', '.join(stale)} changed after the detector core was compiled, so "
            f"Python would run the old compiled code. Recompile with: {REBUILD}"
        )
