#!/usr/bin/env bash
# Generates every googleapis file under google/ with the CLI (7,204 files, 635 packages), then
# compiles a cross-package slice built by the build-script builder, with clippy and rustdoc
# denying warnings.
#
# The corpus is optional data (`corpus.sh`: `googleapis-f8291d2-protos.tar.xz` under
# $RUST_RPC_SHARED/corpus, default ../shared beside the checkout, or any checkout of googleapis
# given as RUST_RPC_GOOGLEAPIS=DIR). Without either, this step says so and passes.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
rc=0
bash "$here/corpus.sh" "$work" 2> "$work/why" || rc=$?
if [ "$rc" = 3 ]; then bash "$root/.ci/skipped" "googleapis: $(cat "$work/why")"; exit 0; fi
if [ "$rc" != 0 ]; then cat "$work/why"; exit "$rc"; fi
cargo build --release --locked -p rust-rpc-compiler --manifest-path "$root/Cargo.toml"
(cd "$work" && find google -name '*.proto' | sort > files.txt)
count=$(wc -l < "$work/files.txt")
start=$(date +%s)
(cd "$work" && xargs -a files.txt "$root/target/release/rust-rpc-compiler" -I . -o "$work/out" 2> stderr.txt) || {
  cat "$work/stderr.txt"; exit 1; }
echo "googleapis: generated $count files into $(ls "$work/out" | wc -l) package files in $(( $(date +%s) - start )) s"
if grep -v "warning: extension" "$work/stderr.txt"; then
  echo "googleapis: unexpected output above"; exit 1
fi
export GOOGLEAPIS_DIR="$work" CARGO_TARGET_DIR="$root/target/googleapis"
cargo clippy --locked --manifest-path "$here/Cargo.toml" -- -D warnings
RUSTDOCFLAGS="-D warnings" cargo doc --locked --no-deps --manifest-path "$here/Cargo.toml"
echo "googleapis: the slice compiles, lints and documents cleanly"
