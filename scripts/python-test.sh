#!/usr/bin/env bash
# Builds the Python package (python/) as a wheel, installs it into a fresh virtualenv and runs its
# tests (python/tests, pytest) against the test RTSP server and the camhub binary. Called by
# scripts/test.sh; needs scripts/setup.sh test and the debug camhub binary (cargo build -p camhub).
# The virtualenv gets maturin, numpy and pytest from PyPI.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
target=$(cargo metadata --format-version 1 --no-deps | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
venv="$target/python-test-venv"
rm -rf "$venv" "$target/wheels-test"
/usr/bin/python3 -m venv "$venv"
"$venv/bin/pip" install --quiet --disable-pip-version-check "maturin>=1.5,<2" numpy pytest
# The dev profile reuses what `cargo test` already compiled (dependencies are optimised in it).
# linux_x86_64: the wheel links the system FFmpeg, so it is not a manylinux wheel.
"$venv/bin/maturin" build --quiet --manifest-path python/Cargo.toml --profile dev \
  --compatibility linux --out "$target/wheels-test"
"$venv/bin/pip" install --quiet --disable-pip-version-check "$target"/wheels-test/camhub-*.whl
cargo build --quiet -p camhub --bin camhub
# pytest (not `python -m pytest`, which would put the working directory first on the path): the
# tests import the installed wheel, not the sources in python/camhub.
CAMHUB_BIN="$target/debug/camhub" "$venv/bin/pytest" -q -p no:cacheprovider python/tests "$@"
