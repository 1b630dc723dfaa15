#!/usr/bin/env bash
# The gRPC interop cases against grpcio (Python; its C core is gRPC's reference
# implementation), both ways, in cleartext: a grpcio server with our interop-client running
# every case, then our interop-server with a grpcio client running every case in one process.
# grpcio is installed once into a virtualenv under ~/.cache/rust-rpc-py; the test protos come
# from Debian's grpc-proto package (interop/fetch-protos.sh).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
export GRPC_PROTO_ROOT
GRPC_PROTO_ROOT=$(bash "$here/fetch-protos.sh" | tail -n 1)
venv=${RUST_RPC_PY_VENV:-$HOME/.cache/rust-rpc-py}
if ! "$venv/bin/python" -c 'import grpc, grpc_tools' 2>/dev/null; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q grpcio==1.85.3 grpcio-tools==1.85.1 protobuf==7.36.2
fi
py="$venv/bin/python"
cargo build --locked -q -p rust-rpc-interop --bins --manifest-path "$root/Cargo.toml"
bin="$root/target/debug"
log=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  rm -rf "$log"
}
trap cleanup EXIT

free_port() { "$py" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# Starts a server in the background and waits (at most 30 s) for its "listening" line.
start_server() {
  local name=$1; shift
  "$@" > "$log/$name" 2>&1 &
  pids+=($!)
  for _ in $(seq 300); do
    grep -q listening "$log/$name" && return 0
    kill -0 "${pids[-1]}" 2>/dev/null || break
    sleep 0.1
  done
  echo "$name did not start:"; cat "$log/$name"; return 1
}

port=$(free_port)
start_server grpcio-server "$py" "$here/py/server.py" --port "$port"
echo "rust-rpc client -> grpcio server:"
timeout 300 "$bin/interop-client" --server_host 127.0.0.1 --server_port "$port" --test_case all

port=$(free_port)
start_server rust-rpc-server "$bin/interop-server" --port "$port"
echo "grpcio client -> rust-rpc server:"
timeout 300 "$py" "$here/py/client.py" --server_host 127.0.0.1 --server_port "$port"
