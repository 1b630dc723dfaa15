#!/usr/bin/env bash
# Builds protobuf 27.1's conformance runner from the `protobuf-src` crate (`build-runner-27.sh`,
# about 6 minutes once; cached in ~/.cache), builds our testee against the .proto files it
# ships and runs the binary, JSON, text-format and editions suites with --enforce_recommended.
# The failure lists are empty: any failure fails this script, and so does a skipped test.
# `build-runner.sh` (protobuf 3.21 from Debian's source package) still runs first for what it
# brings beside its runner: Debian's protoc 3.21, which the plugin's tests use, and the
# benchmark data sets. Its runner is a subset of 27.1's suites and is no longer run here; the
# testee builds against its files too (`RUST_RPC_CONFORMANCE_PROTOS=~/.cache/pb-conformance/protos`).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
cache=${RUST_RPC_CONFORMANCE_DIR:-$HOME/.cache/pb-conformance}
cache27=${RUST_RPC_CONFORMANCE_27_DIR:-$HOME/.cache/pb-conformance-27}
bash "$here/build-runner.sh" "$cache" >/dev/null
runner27=$(bash "$here/build-runner-27.sh" "$cache27" | tail -n 1)
empty=$(mktemp)
trap 'rm -f "$empty"' EXIT
export RUST_RPC_CONFORMANCE_PROTOS=$cache27/protos
cargo build --release --locked -p conformance --manifest-path "$root/Cargo.toml"
out=$("$runner27" --failure_list "$empty" --text_format_failure_list "$empty" --enforce_recommended \
  "$root/target/release/conformance" 2>&1) || { echo "$out" | tail -n 40; exit 1; }
echo "$out" | grep 'CONFORMANCE SUITE'
if echo "$out" | grep 'CONFORMANCE SUITE' | grep -qv ' 0 skipped'; then
  echo "the testee skipped tests (above)"; exit 1
fi
