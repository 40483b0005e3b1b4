#!/usr/bin/env bash
# Sets up everything Stormvarsel needs on this machine, then runs the demo or the test suite.
#
#   bash deploy/local.sh demo     # local Kafka + worker + sample mentions, stops cleanly
#   bash deploy/local.sh test     # the full test suite (extra arguments go to pytest)
#   bash deploy/local.sh setup    # only set up
#
# Needs: Python >= 3.11, and (installed here with apt-get when run as root on Debian/Ubuntu)
# Java 17+, Maven, and Prometheus/Alertmanager for the config checks. Idempotent and quick once
# everything is in place.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

# A mistyped action is refused before anything is installed.
case "${1:-demo}" in
  demo | test | setup) ;;
  *) echo "usage: bash deploy/local.sh [demo|test|setup]" >&2; exit 2 ;;
esac

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

APT_PACKAGES=()
command -v java >/dev/null 2>&1 || APT_PACKAGES+=(openjdk-17-jre-headless)
command -v mvn >/dev/null 2>&1 || APT_PACKAGES+=(maven)
command -v promtool >/dev/null 2>&1 || APT_PACKAGES+=(prometheus)
command -v amtool >/dev/null 2>&1 || APT_PACKAGES+=(prometheus-alertmanager)
# A C compiler and Python's headers: `uv sync` compiles the detector core with mypyc.
has_python_headers() {
  "${PYTHON:-python3}" -c 'import os, sys, sysconfig
sys.exit(not os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h")))' 2>/dev/null
}
# Optional: without them (and not root) the set-up goes on with a plain-Python build.
BUILD_PACKAGES=()
command -v cc >/dev/null 2>&1 || BUILD_PACKAGES+=(gcc libc6-dev)
has_python_headers || BUILD_PACKAGES+=(python3-dev)
if ((${#BUILD_PACKAGES[@]})) && [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null 2>&1; then
  APT_PACKAGES+=("${BUILD_PACKAGES[@]}")
fi
# uv may have to go into a virtualenv of its own (see below), which Debian ships apart.
if ! command -v uv >/dev/null 2>&1 && ! "${PYTHON:-python3}" -c 'import ensurepip' 2>/dev/null; then
  APT_PACKAGES+=(python3-venv)
fi
if ((${#APT_PACKAGES[@]})); then
  if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null 2>&1; then
    say "Installing ${APT_PACKAGES[*]} with apt-get"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${APT_PACKAGES[@]}" >/dev/null
  else
    say "Missing system packages: ${APT_PACKAGES[*]}"
    echo "Install them (Debian/Ubuntu: sudo apt-get install ${APT_PACKAGES[*]})," >&2
    echo "or run the whole stack in containers instead: docker compose up -d --build" >&2
    exit 1
  fi
fi

PY=${PYTHON:-python3}
if ! "$PY" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
  echo "Python 3.11 or newer is needed (found: $("$PY" --version 2>&1))." >&2
  exit 1
fi

UV_VENV="${XDG_DATA_HOME:-$HOME/.local/share}/stormvarsel/uv"
export PATH="$HOME/.local/bin:$UV_VENV/bin:$PATH"
if ! command -v uv >/dev/null 2>&1; then
  say "Installing uv (Python package manager) from PyPI"
  if ! "$PY" -m pip install --quiet --disable-pip-version-check --user uv 2>/dev/null; then
    # A system Python that refuses pip (PEP 668: Debian 12, Ubuntu 23.04 and later) or has
    # none: uv goes into a virtualenv of its own instead.
    if ! "$PY" -m venv --clear "$UV_VENV" >/dev/null; then
      echo "Could not create a virtualenv for uv with $PY." >&2
      echo "Install python3-venv (Debian/Ubuntu: sudo apt-get install python3-venv), or uv itself." >&2
      exit 1
    fi
    "$UV_VENV/bin/python" -m pip install --quiet --disable-pip-version-check uv
  fi
fi

build="compiles the detector core with mypyc"
if ! command -v cc >/dev/null 2>&1 || ! has_python_headers; then
  # Without them the project is built as plain Python: everything works, the detector core
  # at about 1/1.6 of the speed (docs/detectors.md, "Cost").
  say "No C compiler or Python headers: the detector core runs as plain Python (slower)"
  export HATCH_BUILD_NO_HOOKS=true
  build="plain Python"
fi
say "Installing Python dependencies from uv.lock ($build)"
uv sync --frozen --quiet --python "$PY"

say "Fetching Apache Kafka from Maven Central (cached after the first time)"
.venv/bin/stormvarsel kafka fetch

say "Preparing the offline sentiment model (cached after the first time)"
.venv/bin/stormvarsel models install

# The Prometheus tools of the versions docker-compose.yml runs (Debian's are older: Prometheus 3
# evaluates range windows differently; Alertmanager 0.28 parses matchers and templates as in
# production), built from the Go module proxy into the cache, for the rule and Alertmanager tests.
# Skipped without Go; the tests then say they ran on Debian's versions only.
compose_image_tag() {  # compose_image_tag prom/prometheus -> 3.5.0
  local tag
  tag=$(sed -n "s|^ *image: $1:v\([0-9.]*\)\$|\1|p" docker-compose.yml)
  [[ $tag =~ ^[0-9]+\.[0-9]+\.[0-9]+$ ]] || { echo "no $1:vX.Y.Z in docker-compose.yml" >&2; return 1; }
  echo "$tag"
}

# go_build_module NAME MODULE@VERSION DEST PKG... : build each ./PKG of the module into DEST.
go_build_module() {
  local name=$1 module=$2 dest=$3
  shift 3
  local pkg missing=0
  for pkg in "$@"; do [[ -x $dest/$(basename "$pkg") ]] || missing=1; done
  ((missing)) || return 0
  if ! command -v go >/dev/null 2>&1; then
    say "No Go toolchain: the tests use Debian's $name only"
    return 0
  fi
  say "Building $name from the Go module proxy (cached after the first time)"
  local work
  work=$(mktemp -d)
  # Prometheus's module has replace directives, so 'go install pkg@version' refuses it: build in
  # the module's own source instead.
  if (export GOMODCACHE="$work/mod" GOFLAGS=-modcacherw
      src=$(go mod download -json "$module" | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')
      cd "$src" && mkdir -p "$work/bin"
      for pkg in "$@"; do go build -trimpath -o "$work/bin/$(basename "$pkg")" "./$pkg" || exit 1; done
     ) >"$work/build.log" 2>&1; then
    mkdir -p "$dest" && mv "$work"/bin/* "$dest/"
  else
    tail -n 20 "$work/build.log" >&2
    say "Could not build $name; the tests use Debian's only"
  fi
  rm -rf "$work"
}

compose_tools() {
  local cache="${XDG_CACHE_HOME:-$HOME/.cache}/stormvarsel" tag
  # Prometheus 3.Y.Z is the Go module version v0.3YY.Z.
  tag=$(compose_image_tag prom/prometheus)
  [[ $tag =~ ^([0-9]+)\.([0-9]+)\.([0-9]+)$ ]]
  go_build_module "promtool $tag" \
    "github.com/prometheus/prometheus@v0.$((BASH_REMATCH[1] * 100 + BASH_REMATCH[2])).${BASH_REMATCH[3]}" \
    "$cache/promtool-v$tag" cmd/promtool
  tag=$(compose_image_tag prom/alertmanager)
  go_build_module "Alertmanager $tag and amtool" "github.com/prometheus/alertmanager@v$tag" \
    "$cache/alertmanager-v$tag" cmd/alertmanager cmd/amtool
}

case "${1:-demo}" in
  demo) shift || true; exec .venv/bin/stormvarsel demo "$@" ;;
  test) shift; compose_tools; exec .venv/bin/python -m pytest "$@" ;;
  setup) compose_tools; say "Set up. Run: .venv/bin/stormvarsel --help" ;;
  *) echo "usage: bash deploy/local.sh [demo|test|setup]" >&2; exit 2 ;;
esac
