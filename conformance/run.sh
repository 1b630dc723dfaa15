#!/usr/bin/env bash
# Builds protobuf's conformance runners (once each; cached in ~/.cache): 3.21's from Debian's
# source package (`build-runner.sh`, which also brings Debian's protoc 3.21 that the plugin's
# tests use, and the benchmark data sets) and 27.1's from the `protobuf-src` crate
# (`build-runner-27.sh`, about 6 minutes, which also tests the editions messages). For each, it
# builds our testee against the .proto files that runner ships and runs the binary, JSON,
# text-format and editions suites with --enforce_recommended. The failure lists are empty: any
# failure fails this script, and so does a skipped test.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
cache=${RUST_RPC_CONFORMANCE_DIR:-$HOME/.cache/pb-conformance}
cache27=${RUST_RPC_CONFORMANCE_27_DIR:-$HOME/.cache/pb-conformance-27}
runner=$(bash "$here/build-runner.sh" "$cache" | tail -n 1)
runner27=$(bash "$here/build-runner-27.sh" "$cache27" | tail -n 1)
empty=$(mktemp)
trap 'rm -f "$empty"' EXIT
# 27.1 last: the testee left built (and linted by the steps after this) is the one with the
# editions messages.
for pair in "$runner:$cache/protos" "$runner27:$cache27/protos"; do
  run=${pair%%:*}
  export RUST_RPC_CONFORMANCE_PROTOS=${pair#*:}
  cargo build --release --locked -p conformance --manifest-path "$root/Cargo.toml"
  out=$("$run" --failure_list "$empty" --text_format_failure_list "$empty" --enforce_recommended \
    "$root/target/release/conformance" 2>&1) || { echo "$out" | tail -n 40; exit 1; }
  echo "$out" | grep 'CONFORMANCE SUITE'
  if echo "$out" | grep 'CONFORMANCE SUITE' | grep -qv ' 0 skipped'; then
    echo "the testee skipped tests (above)"; exit 1
  fi
done
