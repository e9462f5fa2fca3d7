#!/usr/bin/env bash
# Installs what building and testing need (scripts/setup.sh test), then runs every test of the workspace,
# doc tests included.
# Extra arguments go to both cargo test runs, e.g. `scripts/test.sh -- --test-threads=2`.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh test
export PATH="$HOME/.cargo/bin:$PATH"
cargo test --workspace --all-targets "$@"
cargo test --workspace --doc "$@"
