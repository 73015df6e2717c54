#!/usr/bin/env bash
# image_test.sh SOURCE_DIR BUILD_DIR IMAGE WORK_DIR
# Builds IMAGE (serin or serin-loadtester) with hack/image from the binary already in BUILD_DIR,
# unpacks the oci-archive as a runtime would (umoci) and checks:
#   - the index names ghcr.io/serin/IMAGE:<version>, with one manifest;
#   - the config: User 65532:65532, Entrypoint /usr/local/bin/IMAGE, no Cmd, the OCI labels
#     title, version (the CMake project's), revision (this checkout's commit), source;
#   - the root filesystem holds exactly the binary, the libraries ldd finds for it (loader
#     included), the CA bundle, and for serin-loadtester hey, sh, bash, curl, grep, their libraries
#     and /tmp;
#     every file is root's and only root can write it; the binary is stripped;
#   - the entrypoint runs from the unpacked rootfs (chroot as the config's user, only the
#     config's environment): serin prints "serin <version>", serin-loadtester its --help;
#   - serin's image has no shell; serin-loadtester's runs sh -c, bash -c (as uid 65532) and hey.
# Exits 77 (skipped) when not root: chroot needs it.
set -euo pipefail
umask 022   # the unpacked root folder as a runtime makes it: 0755
src=$1 build=$2 image=$3 work=$4

[ "$(id -u)" -eq 0 ] || { echo "skipped: chroot needs root"; exit 77; }
failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }
pass() { echo "ok: $*"; }
check_eq() {  # check_eq WHAT EXPECTED ACTUAL
  if [ "$2" = "$3" ]; then pass "$1 = $3"; else fail "$1: expected '$2', got '$3'"; fi
}

rm -rf "$work"
mkdir -p "$work"
version=$(sed -n 's/^project(serin VERSION \([0-9.]*\).*/\1/p' "$src/CMakeLists.txt")
revision=$(git -C "$src" rev-parse HEAD)
tag=ghcr.io/serin/$image:$version
binary=$build/controller/serin
[ "$image" = serin-loadtester ] && binary=$build/loadtester/serin-loadtester

start=$(date +%s)
SERIN_BUILD_DIR=$build "$src/hack/image" --no-build -o "$work/out" "$image"
archive=$work/out/$image-$version.oci.tar
[ -f "$archive" ] || { echo "FAIL: no archive $archive"; exit 1; }
leftovers=$(find "$work/out" -mindepth 1 ! -name "$image-$version.oci.tar")
check_eq "what hack/image leaves in its output folder besides the archive" "" "$leftovers"

# --- the OCI layout and the config -----------------------------------------------------------
mkdir -p "$work/layout"
tar -xf "$archive" -C "$work/layout"
blob() { echo "$work/layout/blobs/${1%%:*}/${1#*:}"; }
index=$work/layout/index.json
check_eq "manifests in the index" 1 "$(jq '.manifests | length' "$index")"
check_eq "the reference" "$tag" "$(jq -r '.manifests[0].annotations["org.opencontainers.image.ref.name"]' "$index")"
manifest=$(blob "$(jq -r '.manifests[0].digest' "$index")")
config=$(blob "$(jq -r '.config.digest' "$manifest")")
check_eq "User" "65532:65532" "$(jq -r '.config.User' "$config")"
check_eq "Entrypoint" "[\"/usr/local/bin/$image\"]" "$(jq -c '.config.Entrypoint' "$config")"
check_eq "Cmd" "null" "$(jq -c '.config.Cmd' "$config")"
label() { jq -r --arg k "org.opencontainers.image.$1" '.config.Labels[$k]' "$config"; }
check_eq "label title" "$image" "$(label title)"
check_eq "label version" "$version" "$(label version)"
check_eq "label revision (without -dirty)" "$revision" "$(label revision | sed 's/-dirty$//')"
check_eq "label source" "https://github.com/serin/serin" "$(label source)"
check_eq "labels" 4 "$(jq '.config.Labels | length' "$config")"

# --- the root filesystem ---------------------------------------------------------------------
umoci unpack --image "$work/layout:$tag" "$work/bundle" >/dev/null
rootfs=$work/bundle/rootfs

# What must be there: each binary at its place, and every library ldd names at the path it names.
expected=$work/expected
{
  echo "/usr/local/bin/$image"
  echo /etc/ssl/certs/ca-certificates.crt
  libraries_of() {
    ldd "$1" | sed -n 's/.*=> \(\/[^ ]*\) (0x.*/\1/p; s/^[[:space:]]*\(\/[^ ]*\) (0x.*/\1/p'
  }
  libraries_of "$binary"
  if [ "$image" = serin-loadtester ]; then
    printf '%s\n' /usr/bin/hey /bin/sh /bin/bash /usr/bin/curl /usr/bin/grep
    libraries_of "$(command -v hey)"
    libraries_of "$(command -v curl)"
    libraries_of "$(command -v grep)"
    libraries_of "$(command -v dash)"
    libraries_of "$(command -v bash)"
  fi
} | sort -u >"$expected"
(cd "$rootfs" && find . ! -type d | sed 's/^\.//' | sort) >"$work/actual"
if diff -u "$expected" "$work/actual"; then
  pass "files: exactly $(wc -l <"$expected") ($(tr '\n' ' ' <"$expected"))"
else
  fail "files differ from the binary, its libraries and the CA bundle (diff above: - missing, + extra)"
fi
# Folders: only those holding the files (and /tmp in the loadtester's).
{
  while read -r f; do d=$(dirname "$f"); while [ "$d" != / ]; do echo "$d"; d=$(dirname "$d"); done; done <"$expected"
  if [ "$image" = serin-loadtester ]; then echo /tmp; fi
} | sort -u >"$work/expected-dirs"
(cd "$rootfs" && find . -mindepth 1 -type d | sed 's/^\.//' | sort) >"$work/actual-dirs"
if diff -u "$work/expected-dirs" "$work/actual-dirs"; then
  pass "folders: only those of the files"
else
  fail "folders differ (diff above)"
fi
check_eq "entries not owned by root" "" "$(find "$rootfs" ! -user 0 -o ! -group 0)"
check_eq "files others can write" "" "$(find "$rootfs" ! -type d -perm /022)"
check_eq "binary is stripped" "0" "$(readelf -S "$rootfs/usr/local/bin/$image" | grep -c '\.symtab' || true)"
if [ "$image" = serin-loadtester ]; then
  check_eq "/tmp mode" 1777 "$(stat -c %a "$rootfs/tmp")"
fi

# --- run it as the runtime would: the config's user, environment and entrypoint only -----------
chroot_bin=$(command -v chroot)
user=$(jq -r '.config.User' "$config")
mapfile -t environment < <(jq -r '.config.Env[]' "$config")
in_image() { env -i "${environment[@]}" "$chroot_bin" --userspec="$user" "$rootfs" "$@"; }
mapfile -t entrypoint < <(jq -r '.config.Entrypoint[]' "$config")

if [ "$image" = serin ]; then
  check_eq "serin --version in the image" "serin $version" "$(in_image "${entrypoint[@]}" --version 2>&1)"
  for shell in /bin/sh /usr/bin/sh /bin/bash /usr/bin/bash /bin/busybox; do
    [ ! -e "$rootfs$shell" ] || fail "a shell at $shell"
  done
  status=0
  in_image sh -c true 2>/dev/null || status=$?
  check_eq "exit status of sh -c true in the image (chroot: command not found)" 127 "$status"
else
  if help=$(in_image "${entrypoint[@]}" --help 2>&1) && [ -n "$help" ]; then
    pass "serin-loadtester --help in the image"
  else
    fail "serin-loadtester --help in the image: $help"
  fi
  check_eq "sh -c in the image" "sh ok" "$(in_image sh -c 'echo sh ok' 2>&1)"
  check_eq "bash -c in the image, its uid" "bash 65532" "$(in_image bash -c 'echo bash $EUID' 2>&1)"
  check_eq "a file in /tmp, written and read back by 65532" "tmp ok" \
    "$(in_image bash -c 'echo tmp ok >/tmp/probe && read -r line </tmp/probe && echo "$line"' 2>&1)"
  # Flagger's acceptance-test webhooks: curl ... | grep ...
  # (no /dev in an unpacked image: a runtime mounts it)
  check_eq "curl | grep in the image" "curl" \
    "$(in_image sh -c 'curl --version | grep -o -m1 "^curl"' 2>&1)"
  usage=$(in_image hey 2>&1 || true)
  case "$usage" in *"Usage: hey"*) pass "hey runs in the image" ;; *) fail "hey: $usage" ;; esac
fi

echo "image $tag: archive $(stat -c %s "$archive") bytes, rootfs $(du -sb "$rootfs" | cut -f1) bytes, $(( $(date +%s) - start )) s"
if [ "$failures" -ne 0 ]; then
  echo "$failures check(s) failed; kept $work"
  exit 1
fi
rm -rf "$work"
