#!/usr/bin/env bash
# Installs what building and running camhub need (scripts/setup.sh build: no test stack), then builds and
# runs it in release mode. Arguments go to camhub: `scripts/run.sh` (built-in demo camera on
# http://127.0.0.1:8080/), `scripts/run.sh --config camhub.toml`, `scripts/run.sh check camhub.toml`.
# To run camhub as a service instead, build and install the Debian package: scripts/package-deb.sh.
#
# For tests: with CAMHUB_BIN set, skips set-up and build and runs that camhub binary instead (with the same
# argument handling and working directory).
set -euo pipefail
# Config paths are the caller's: `scripts/run.sh --config camhub.toml` means ./camhub.toml where the
# command was typed, not in the repository this script changes into. Rewritten: the value of
# `-c FILE`, `--config FILE` and `--config=FILE`, and the FILE of `check [--strict] FILE`.
caller=$PWD
absolute() { if [[ $1 == /* ]]; then printf '%s' "$1"; else printf '%s/%s' "$caller" "$1"; fi; }
args=()
path_next=0  # the next argument is the value of -c / --config
check=0      # the command is `check`: its first non-option argument is the file
positional=0 # arguments seen that are neither options nor option values
value_next=0 # the next argument is the value of --log-format
for arg in "$@"; do
  if ((path_next)); then
    arg=$(absolute "$arg")
    path_next=0
  elif ((value_next)); then
    value_next=0
  elif [[ $arg == --log-format ]]; then
    value_next=1
  elif [[ $arg == --config || $arg == -c ]]; then
    path_next=1
  elif [[ $arg == --config=* ]]; then
    arg="--config=$(absolute "${arg#--config=}")"
  elif [[ $arg != -* || $arg == - ]]; then
    if ((check && positional == 1)); then
      arg=$(absolute "$arg")
    elif [[ $arg == check ]] && ((positional == 0)); then
      check=1
    fi
    positional=$((positional + 1))
  fi
  args+=("$arg")
done
cd "$(dirname "$0")/.."
if [[ -n ${CAMHUB_BIN:-} ]]; then
  exec "$CAMHUB_BIN" ${args[@]+"${args[@]}"}
fi
scripts/setup.sh build
export PATH="$HOME/.cargo/bin:$PATH"
exec cargo run --release -p camhub -- ${args[@]+"${args[@]}"}
