#!/usr/bin/env bash
# Installs what camhub needs on Debian/Ubuntu, by job:
#   scripts/setup.sh [build]   build and run camhub (the default; what scripts/run.sh and
#                              scripts/package-deb.sh need)
#   scripts/setup.sh test      that, and the test stack (what scripts/test.sh and CI need)
# Idempotent and fast when everything is already there (no apt-get at all then). Runs apt as root, or
# through sudo. Installs Rust with rustup when there is no cargo, and stops with the minimum version when
# the cargo on the PATH is older than the workspace's rust-version.
set -euo pipefail

# Run time: the camhub binary links FFmpeg's and SQLite's shared libraries (and libc); nothing else, as
# its TLS roots are built in. Their package names carry the library's soname and so differ between releases
# (libavcodec59 on Debian 12, libavcodec60 on Ubuntu 24.04): they are not named here but come with the
# -dev packages of the build group, and the .deb declares the ones its binary links (dpkg-shlibdeps).
# Build: compilers, bindgen's libclang, FFmpeg and SQLite headers (the store links the system SQLite,
# libsqlite3-0), dpkg-dev and binutils for scripts/package-deb.sh, and curl to fetch rustup.
BUILD=(
  build-essential pkg-config clang libclang-dev cmake nasm
  libavcodec-dev libavformat-dev libavutil-dev libswscale-dev libavdevice-dev libsqlite3-dev
  dpkg-dev binutils ca-certificates curl
)
# Test: the fixtures (the ffmpeg CLI, a GStreamer RTSP server run by python3-gi and GStreamer's rtspsrc with
# libav's decoder as an RTSP client of camhub, headless Chromium, the
# mosquitto MQTT broker that tests/mqtt.rs starts on a port of its own, with mosquitto_sub/_pub to look at
# it by hand), systemd-analyze, which checks the packaged unit (it works without systemd running), valgrind
# for the C library's leak check, and python3-venv for the Python package's tests (scripts/python-test.sh).
TEST=(
  ffmpeg
  gstreamer1.0-tools gstreamer1.0-plugins-base gstreamer1.0-plugins-good
  gstreamer1.0-plugins-bad gstreamer1.0-plugins-ugly gstreamer1.0-libav
  gstreamer1.0-x gir1.2-gst-rtsp-server-1.0 python3-gi
  chromium systemd
  mosquitto mosquitto-clients
  valgrind python3-venv
)

group=${1:-build}
case $group in
  build) packages=("${BUILD[@]}") ;;
  test) packages=("${BUILD[@]}" "${TEST[@]}") ;;
  -h | --help)
    sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0"
    exit 0
    ;;
  *)
    echo "setup.sh: unknown group \"$group\": use build or test" >&2
    exit 2
    ;;
esac

missing=()
for pkg in "${packages[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)
  if [[ "$status" != "install ok installed" ]]; then
    missing+=("$pkg")
  fi
done

if ((${#missing[@]} > 0)); then
  if [[ $(id -u) -eq 0 ]]; then
    SUDO=()
  elif command -v sudo >/dev/null 2>&1; then
    SUDO=(sudo)
  else
    echo "setup.sh: need root or sudo to install: ${missing[*]}" >&2
    exit 1
  fi
  echo "setup.sh: installing ${missing[*]}"
  "${SUDO[@]}" apt-get update
  "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}"
fi

# The scripts that call this one put rustup's cargo first on the PATH; check the cargo they will run.
if [[ -x "$HOME/.cargo/bin/cargo" ]]; then
  export PATH="$HOME/.cargo/bin:$PATH"
fi
if ! command -v cargo >/dev/null 2>&1; then
  echo "setup.sh: installing Rust with rustup"
  curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal -c rustfmt,clippy
  export PATH="$HOME/.cargo/bin:$PATH"
  echo "setup.sh: add \$HOME/.cargo/bin to your PATH (or run: . \"\$HOME/.cargo/env\")"
fi

# Debian's and Ubuntu's own cargo package is older than camhub's dependencies need.
root=$(cd "$(dirname "$0")/.." && pwd)
need=$(sed -n 's/^rust-version *= *"\([0-9.]*\)".*/\1/p' "$root/Cargo.toml" | head -n 1)
have=$(cargo --version 2>/dev/null | awk '{print $2}' | sed 's/-.*//')
if [[ -n $need ]] && [[ -z $have || $(printf '%s\n%s\n' "$need" "$have" | sort -V | head -n 1) != "$need" ]]; then
  {
    echo "setup.sh: camhub needs Rust $need or newer; $(command -v cargo) is cargo ${have:-of unknown version}."
    if command -v rustup >/dev/null 2>&1; then
      echo "  Update it with: rustup update stable && rustup default stable"
    else
      echo "  Distribution cargo packages are too old. Install Rust with rustup (https://rustup.rs):"
      echo "    curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal"
      echo "    . \"\$HOME/.cargo/env\""
      echo "  (this puts \$HOME/.cargo/bin first on the PATH; or remove the old one: sudo apt-get remove cargo rustc)"
    fi
  } >&2
  exit 1
fi
