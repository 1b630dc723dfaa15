#!/usr/bin/env bash
# Installs cargo-fuzz if needed and runs every fuzz target for FUZZ_SECONDS each (default 60).
# Any crash fails the run and leaves the input in fuzz/artifacts/<target>/.
set -euo pipefail
cd "$(dirname "$0")"
command -v cargo-fuzz >/dev/null || cargo install --locked cargo-fuzz
log=$(mktemp)
trap 'rm -f "$log"' EXIT
for target in decode frames grpc_frames json text; do
  status=0
  dict=()
  if [ -f "$target.dict" ]; then dict=("-dict=$target.dict"); fi
  RUSTC_BOOTSTRAP=1 cargo fuzz run "$target" -- -max_total_time="${FUZZ_SECONDS:-60}" "${dict[@]}" > "$log" 2>&1 || status=$?
  echo "fuzz $target:"
  grep -E '^(#[0-9]+ +DONE|Done|==[0-9]+==ERROR|thread .* panicked|SUMMARY)' "$log" || tail -n 20 "$log"
  if [ "$status" -ne 0 ]; then exit "$status"; fi
done
