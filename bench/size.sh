#!/usr/bin/env bash
# Package size of one function under a release-profile variant: builds it into a target dir of
# the variant's own (so variants do not evict each other), zips the bootstrap as Lambda stores it
# (deflate, level 9) and prints both sizes.
#   bench/size.sh NAME [cargo --config overrides...]
#   bench/size.sh baseline
#   bench/size.sh s-fat 'profile.release.opt-level="s"' 'profile.release.lto="fat"'
# FUNCTION (default receive) picks the function; the binary lands in target/variants/NAME
# (`baseline`, the workspace's own profile, builds in target/ itself).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
name=$1
shift
function=${FUNCTION:-receive}
overrides=()
for override in "$@"; do overrides+=(--config "$override"); done
dir="target/variants/$name"
[ "$name" = baseline ] && [ $# -eq 0 ] && dir=target
started=$(date +%s)
CARGO_TARGET_DIR="$dir" cargo build --quiet --release -p "$function" "${overrides[@]}"
seconds=$(( $(date +%s) - started ))
out="target/variants/$name/package"
mkdir -p "$out"
cp "$dir/release/$function" "$out/bootstrap"
rm -f "$out/bootstrap.zip"
(cd "$out" && zip -q -9 bootstrap.zip bootstrap)
printf '%s\t%s\tbootstrap %d B\tzip %d B\tbuild %d s\n' "$name" "$function" \
  "$(stat -c %s "$out/bootstrap")" "$(stat -c %s "$out/bootstrap.zip")" "$seconds"
