#!/usr/bin/env bash
# The generator benchmark: rust-rpc against protox + prost-build on the same googleapis file
# lists, whole-process wall time, medians of 3 runs taken in turn (prost, ours, cli, prost,
# ...), on one core (`taskset -c 0`) and on all. Sides:
#   prost  protox + prost-build (`src/bin/generate.rs prost`), as a build script runs them
#   ours   rust-rpc's library (`src/bin/generate.rs ours`), as a build script runs it
#   cli    the `rust-rpc-compiler` binary
# Both library sides generate every file of the parsed set (the listed files and their
# imports), as prost-build does. Lists: googleads v25 (914 files), prefixes of all of google/
# (in name order) at about 0.3, 3 and 30 MB of .proto text, and all of google/ (7,204 files,
# 63 MB), for the time per input byte.
#
# The corpus: as `testdata/googleapis/corpus.sh` finds it (`googleapis-f8291d2-protos.tar.xz`
# under $RUST_RPC_SHARED/corpus, or a googleapis checkout as RUST_RPC_GOOGLEAPIS=DIR).
# Usage: bash benches/generate.sh [LIST...]   (default: ads all; also p300k p3m p30m)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
bash "$root/testdata/googleapis/corpus.sh" "$work"
cargo build --release --locked -q -p rust-rpc-benches --bin generate --manifest-path "$root/Cargo.toml"
cargo build --release --locked -q -p rust-rpc-compiler --manifest-path "$root/Cargo.toml"
gen=$root/target/release/generate
cli=$root/target/release/rust-rpc-compiler
cd "$work"
find google -name '*.proto' | sort > all.txt
find google/ads/googleads/v25 -name '*.proto' | sort > ads.txt
# Prefixes of all.txt by bytes of .proto text.
prefix() { xargs -a all.txt wc -c | grep -v ' total$' | awk -v max="$1" '{ sum += $1; if (sum <= max) print $2 }' > "$2"; }
prefix 300000 p300k.txt
prefix 3000000 p3m.txt
prefix 30000000 p30m.txt

run() { # side list -> seconds
  rm -rf out
  local start end
  start=$(date +%s.%N)
  case $1 in
    prost|ours) $pin "$gen" "$1" . "$2.txt" out 2>/dev/null ;;
    cli) xargs -a "$2.txt" $pin "$cli" -I . -o out ;;
  esac
  end=$(date +%s.%N)
  echo "$end - $start" | bc
}
median() { printf '%s\n' "$@" | sort -g | sed -n 2p; }

lists=${*:-ads all}
printf '| list | files | MB | cores | prost | ours (library) | cli | ours/prost | cli/prost | cli s/MB |\n'
printf '| --- | ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: |\n'
for list in $lists; do
  files=$(wc -l < "$list.txt")
  mb=$(xargs -a "$list.txt" cat | wc -c | awk '{ printf "%.1f", $1 / 1e6 }')
  for cores in 1 all; do
    if [ "$cores" = 1 ]; then pin="taskset -c 0"; else pin=""; fi
    p=(); o=(); c=()
    for _ in 1 2 3; do
      p+=("$(run prost "$list")"); o+=("$(run ours "$list")"); c+=("$(run cli "$list")")
    done
    mp=$(median "${p[@]}"); mo=$(median "${o[@]}"); mc=$(median "${c[@]}")
    printf '| %s | %s | %s | %s | %.2f s | %.2f s | %.2f s | %.2f | %.2f | %.3f |\n' "$list" "$files" "$mb" "$cores" \
      "$mp" "$mo" "$mc" "$(echo "$mo / $mp" | bc -l)" "$(echo "$mc / $mp" | bc -l)" "$(echo "$mc / $mb" | bc -l)"
  done
done
