"""The worker image's base: a fixed Python and Debian, the Python the project targets.

A moving tag such as ``python:3.11-slim`` gives two builds of the same commit different
interpreters and, when Debian's next release became the default, a different distribution
(``3.11-slim`` moved from bookworm to trixie): an image that passed its checks yesterday is not
the one built today. We cannot resolve digests here, so the tag must at least name the full
Python version and the Debian release.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOCKERFILE = ROOT / "deploy" / "worker" / "Dockerfile"
PYPROJECT = ROOT / "pyproject.toml"

#: python:<major>.<minor>.<patch>-slim-<Debian codename>, optionally with a digest.
PINNED = re.compile(
    r"python:(?P<major>\d+)\.(?P<minor>\d+)\.(?P<patch>\d+)-slim-(?P<debian>[a-z]+)"
    r"(?:@sha256:[0-9a-f]{64})?"
)


def base_images(text: str) -> list[str]:
    """Every stage's base image, with ``${ARG}`` replaced by the ARG's default."""
    defaults = dict(re.findall(r"^ARG\s+(\w+)=(\S+)\s*$", text, flags=re.MULTILINE))

    def resolve(match: re.Match[str]) -> str:
        return defaults.get(match.group(1), match.group(0))

    froms = re.findall(r"^FROM\s+(\S+)", text, flags=re.MULTILINE | re.IGNORECASE)
    return [re.sub(r"\$\{(\w+)\}", resolve, reference) for reference in froms]


def targeted_python() -> tuple[int, int]:
    project = tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))
    minimum = re.fullmatch(r">=\s*(\d+)\.(\d+)", project["project"]["requires-python"].strip())
    assert minimum, project["project"]["requires-python"]
    mypy = project["tool"]["mypy"]["python_version"]
    assert mypy == f"{minimum.group(1)}.{minimum.group(2)}", (mypy, minimum.group(0))
    return int(minimum.group(1)), int(minimum.group(2))


def test_base_image_is_a_full_python_and_debian_version() -> None:
    images = base_images(DOCKERFILE.read_text(encoding="utf-8"))
    assert len(images) == 2, images  # the build stage and the runtime stage
    # The runtime stage runs the build stage's virtualenv, whose interpreter is a symlink into
    # the base image: both must be the same image.
    assert len(set(images)) == 1, f"the stages use different bases: {images}"
    match = PINNED.fullmatch(images[0])
    assert match, (
        f"{images[0]!r} is a moving tag: pin python:X.Y.Z-slim-<debian>, e.g. "
        "python:3.11.17-slim-bookworm"
    )
    python = (int(match.group("major")), int(match.group("minor")))
    assert python == targeted_python(), (
        f"the image runs Python {python}, the project targets {targeted_python()}"
    )


def test_moving_tags_are_refused() -> None:
    for image in ("python:3.11-slim", "python:3.11-slim-bookworm", "python:3.11.17-slim"):
        assert not PINNED.fullmatch(image), image
    assert base_images("ARG PYTHON_IMAGE=python:3.11-slim\nFROM ${PYTHON_IMAGE} AS a\n") == [
        "python:3.11-slim"
    ]
