#!/usr/bin/env bash
# Puts googleapis' google/**/*.proto into DEST: from a checkout named by RUST_RPC_GOOGLEAPIS,
# else from `googleapis-f8291d2-protos.tar.xz` under $RUST_RPC_SHARED/corpus (default:
# ../shared beside the checkout). Exits 3, having said where to get it, when there is neither.
# Usage: corpus.sh DEST
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
dest=$1
corpus=${RUST_RPC_SHARED:-$root/../shared}/corpus/googleapis-f8291d2-protos.tar.xz
if [ -n "${RUST_RPC_GOOGLEAPIS:-}" ]; then
  (cd "$RUST_RPC_GOOGLEAPIS" && find google -name '*.proto' -print0 | tar --null -T - -cf -) | tar -xf - -C "$dest"
elif [ -f "$corpus" ]; then
  tar -xJf "$corpus" -C "$dest"
else
  echo "no googleapis corpus at $corpus; get it with 'git clone https://github.com/googleapis/googleapis && git -C googleapis checkout f8291d2b' and run with RUST_RPC_GOOGLEAPIS=\$PWD/googleapis" >&2
  exit 3
fi
