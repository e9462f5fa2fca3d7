#!/usr/bin/env bash
# Installs what the tests need (scripts/setup.sh), then runs every test of the workspace, doc tests included.
# Extra arguments go to both cargo test runs, e.g. `scripts/test.sh -- --test-threads=2`.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
export PATH="$HOME/.cargo/bin:$PATH"
cargo test --workspace --all-targets "$@"
cargo test --workspace --doc "$@"
