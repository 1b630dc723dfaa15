#!/usr/bin/env bash
# Builds protobuf's conformance runner (once; cached in ~/.cache/pb-conformance), builds our
# testee against the .proto files the runner ships, and runs the binary suite. The failure list
# is empty: any failure fails this script. JSON and text-format tests are answered `skipped`.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
cache=${RUST_RPC_CONFORMANCE_DIR:-$HOME/.cache/pb-conformance}
runner=$(bash "$here/build-runner.sh" "$cache" | tail -n 1)
export RUST_RPC_CONFORMANCE_PROTOS="$cache/protos"
cargo build --release --locked -p conformance --manifest-path "$root/Cargo.toml"
testee="$root/target/release/conformance"
empty=$(mktemp)
trap 'rm -f "$empty"' EXIT
out=$("$runner" --failure_list "$empty" --enforce_recommended "$testee" 2>&1) || { echo "$out" | tail -n 40; exit 1; }
echo "$out" | grep 'CONFORMANCE SUITE'
