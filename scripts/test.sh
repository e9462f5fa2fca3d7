#!/usr/bin/env bash
# Installs what building and testing need (scripts/setup.sh test), then runs every test of the workspace,
# doc tests included, and the Python package's tests (scripts/python-test.sh).
# Extra arguments go to both cargo test runs, e.g. `scripts/test.sh -- --test-threads=2`.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh test
export PATH="$HOME/.cargo/bin:$PATH"
cargo test --workspace --all-targets "$@"
cargo test --workspace --doc "$@"
# The Python package: its wheel, installed into a fresh virtualenv, and its pytest suite.
scripts/python-test.sh
