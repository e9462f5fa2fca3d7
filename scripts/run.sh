#!/usr/bin/env bash
# Installs what camhub needs (scripts/setup.sh), then builds and runs it in release mode.
# Arguments go to camhub: `scripts/run.sh` (built-in demo camera on http://127.0.0.1:8080/),
# `scripts/run.sh --config camhub.toml`, `scripts/run.sh check camhub.toml`.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
export PATH="$HOME/.cargo/bin:$PATH"
exec cargo run --release -p camhub -- "$@"
