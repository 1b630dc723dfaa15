#!/usr/bin/env bash
# Installs cargo-fuzz if needed and fuzzes the decoders for FUZZ_SECONDS (default 60).
# Any crash fails the run and leaves the input in fuzz/artifacts/decode/.
set -euo pipefail
cd "$(dirname "$0")"
command -v cargo-fuzz >/dev/null || cargo install --locked cargo-fuzz
log=$(mktemp)
trap 'rm -f "$log"' EXIT
status=0
RUSTC_BOOTSTRAP=1 cargo fuzz run decode -- -max_total_time="${FUZZ_SECONDS:-60}" > "$log" 2>&1 || status=$?
grep -E '^(#[0-9]+ +DONE|Done|==[0-9]+==ERROR|thread .* panicked|SUMMARY)' "$log" || tail -n 20 "$log"
exit "$status"
