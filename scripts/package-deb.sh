#!/usr/bin/env bash
# Builds the Debian package target/debian/camhub_<version>_<arch>.deb, which installs camhub as a service:
#   bash scripts/package-deb.sh
#   sudo apt install ./target/debian/camhub_0.1.0_amd64.deb
# It holds /usr/bin/camhub, the systemd unit camhub.service (hardened, running as the system user camhub in
# group video), the config /etc/camhub/camhub.toml (a conffile, root:camhub 0640, the demo camera and
# commented examples) and the maintainer scripts; the sources are in packaging/. Depends: is computed from
# the binary by dpkg-shlibdeps (the FFmpeg libraries and libc of this distribution release), so build the
# package on the release it is for.
#
# Options:
#   --binary PATH  package this camhub binary instead of building one (`cargo build --release -p camhub`)
#   --out DIR      write the .deb into DIR instead of target/debian
# Needs dpkg-dev and binutils (scripts/setup.sh build installs them). Prints the path of the .deb last.
set -euo pipefail

usage() { sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0"; }
die() {
  echo "package-deb.sh: $*" >&2
  exit 1
}

caller=$PWD
absolute() { if [[ $1 == /* ]]; then printf '%s' "$1"; else printf '%s/%s' "$caller" "$1"; fi; }
repo=$(cd "$(dirname "$0")/.." && pwd)
binary=
out=$repo/target/debian
while (($# > 0)); do
  case $1 in
    --binary) (($# >= 2)) || die "--binary needs a path"; binary=$(absolute "$2"); shift 2 ;;
    --binary=*) binary=$(absolute "${1#--binary=}"); shift ;;
    --out) (($# >= 2)) || die "--out needs a directory"; out=$(absolute "$2"); shift 2 ;;
    --out=*) out=$(absolute "${1#--out=}"); shift ;;
    -h | --help) usage; exit 0 ;;
    *) die "unknown argument: $1 (see --help)" ;;
  esac
done

for tool in dpkg-deb:dpkg dpkg-shlibdeps:dpkg-dev objcopy:binutils; do
  command -v "${tool%%:*}" >/dev/null 2>&1 ||
    die "${tool%%:*} not found: install the Debian package ${tool#*:} (bash scripts/setup.sh build)"
done

# The version of [workspace.package] in Cargo.toml, the one every crate inherits.
version=$(sed -n '/^\[workspace\.package\]/,/^\[/{s/^version *= *"\([^"]*\)".*/\1/p}' "$repo/Cargo.toml")
[[ -n $version ]] || die "no version in [workspace.package] of $repo/Cargo.toml"
arch=$(dpkg --print-architecture)

if [[ -z $binary ]]; then
  export PATH="$HOME/.cargo/bin:$PATH"
  echo "package-deb.sh: cargo build --release -p camhub" >&2
  (cd "$repo" && cargo build --release -p camhub)
  binary=$repo/target/release/camhub
fi
[[ -f $binary && -x $binary ]] || die "not an executable file: $binary"

work=$(mktemp -d "${TMPDIR:-/tmp}/camhub-deb.XXXXXX")
trap 'rm -rf "$work"' EXIT
# dpkg-shlibdeps expects the debian/ layout of a source package: debian/control and debian/PACKAGE/.
root=$work/debian/camhub
mkdir -p "$work/debian"
printf 'Source: camhub\n\nPackage: camhub\nArchitecture: any\n' >"$work/debian/control"
install -d -m 0755 "$root/DEBIAN" "$root/usr/bin" "$root/lib/systemd/system" "$root/etc/camhub" \
  "$root/usr/share/doc/camhub"

# Without debug info (the release profile keeps line tables for backtraces during development); the
# symbol table stays, so a panic's backtrace still names functions.
objcopy --strip-debug "$binary" "$root/usr/bin/camhub"
chmod 0755 "$root/usr/bin/camhub"
install -m 0644 "$repo/packaging/camhub.service" "$root/lib/systemd/system/camhub.service"
install -m 0640 "$repo/packaging/camhub.toml" "$root/etc/camhub/camhub.toml"
install -m 0644 "$repo/packaging/copyright" "$root/usr/share/doc/camhub/copyright"
install -m 0755 "$repo/packaging/postinst" "$repo/packaging/prerm" "$repo/packaging/postrm" "$root/DEBIAN/"
echo /etc/camhub/camhub.toml >"$root/DEBIAN/conffiles"
chmod 0644 "$root/DEBIAN/conffiles"

# The shared libraries the binary links, as package names and minimum versions of this release
# (libavcodec59 (>= 7:5.0) on Debian 12), from the packages' shlibs/symbols files.
shlibs=$(cd "$work" && dpkg-shlibdeps -O debian/camhub/usr/bin/camhub) ||
  die "dpkg-shlibdeps could not map the libraries $binary links to Debian packages (is FFmpeg from the distribution's packages?)"
depends=$(sed -n 's/^shlibs:Depends=//p' <<<"$shlibs")
[[ $depends == *libavcodec* ]] || die "dpkg-shlibdeps found no FFmpeg library in $binary: $shlibs"
# adduser: postinst creates the user camhub with it.
depends="$depends, adduser"
installed_size=$(du -sk --exclude=DEBIAN "$root" | cut -f1)
sed -e "s/@VERSION@/$version/" -e "s/@ARCH@/$arch/" -e "s/@INSTALLED_SIZE@/$installed_size/" \
  -e "s/@DEPENDS@/$depends/" "$repo/packaging/control" >"$root/DEBIAN/control"

mkdir -p "$out"
deb=$out/camhub_${version}_${arch}.deb
dpkg-deb --build --root-owner-group "$root" "$deb" >&2
echo "$deb"
