#!/usr/bin/env bash
# Installs what camhub needs (scripts/setup.sh), then builds and runs it in release mode.
# Arguments go to camhub: `scripts/run.sh` (built-in demo camera on http://127.0.0.1:8080/),
# `scripts/run.sh --config camhub.toml`, `scripts/run.sh check camhub.toml`.
set -euo pipefail
# Config paths are the caller's: `scripts/run.sh --config camhub.toml` means ./camhub.toml where the
# command was typed, not in the repository this script changes into.
caller=$PWD
absolute() { if [[ $1 == /* ]]; then printf '%s' "$1"; else printf '%s/%s' "$caller" "$1"; fi; }
args=()
path_next=0
for arg in "$@"; do
  if ((path_next)); then
    arg=$(absolute "$arg")
    path_next=0
  elif [[ $arg == --config || $arg == -c || ($arg == check && ${#args[@]} -eq 0) ]]; then
    path_next=1
  elif [[ $arg == --config=* ]]; then
    arg="--config=$(absolute "${arg#--config=}")"
  fi
  args+=("$arg")
done
cd "$(dirname "$0")/.."
scripts/setup.sh
export PATH="$HOME/.cargo/bin:$PATH"
exec cargo run --release -p camhub -- ${args[@]+"${args[@]}"}
