#!/usr/bin/env bash
# Generates every googleapis file under google/ with the CLI (7,204 files, 635 packages), then
# compiles a cross-package slice built by the build-script builder, with clippy and rustdoc
# denying warnings.
#
# The corpus is optional data: `googleapis-f8291d2-protos.tar.xz` under $RUST_RPC_SHARED/corpus
# (default: ../shared beside the checkout), or any checkout of googleapis given as
# RUST_RPC_GOOGLEAPIS=DIR. Without either, this step says so and passes.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
corpus=${RUST_RPC_SHARED:-$root/../shared}/corpus/googleapis-f8291d2-protos.tar.xz
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
if [ -n "${RUST_RPC_GOOGLEAPIS:-}" ]; then
  (cd "$RUST_RPC_GOOGLEAPIS" && find google -name '*.proto' -print0 | tar --null -T - -cf -) | tar -xf - -C "$work"
elif [ -f "$corpus" ]; then
  tar -xJf "$corpus" -C "$work"
else
  bash "$root/.ci/skipped" "googleapis: no corpus at $corpus; get it with" \
    "'git clone https://github.com/googleapis/googleapis && git -C googleapis checkout f8291d2b'" \
    "and run with RUST_RPC_GOOGLEAPIS=\$PWD/googleapis"
  exit 0
fi
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
