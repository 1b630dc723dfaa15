#!/usr/bin/env bash
# The gRPC interop cases against grpcio (Python; its C core is gRPC's reference
# implementation), both ways: a grpcio server with our interop-client running
# every case, then our interop-server with a grpcio client running every case in one process;
# then both again over TLS, with a CA and server certificate the script makes (openssl). Our
# server's health service is checked with grpcio-health-checking's client.
# grpcio is installed once into a virtualenv under ~/.cache/rust-rpc-py; the test protos come
# from Debian's grpc-proto package (interop/fetch-protos.sh).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
export GRPC_PROTO_ROOT
GRPC_PROTO_ROOT=$(bash "$here/fetch-protos.sh" | tail -n 1)
venv=${RUST_RPC_PY_VENV:-$HOME/.cache/rust-rpc-py}
if ! "$venv/bin/python" -c 'import grpc, grpc_tools, grpc_health' 2>/dev/null; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q grpcio==1.85.3 grpcio-tools==1.85.1 protobuf==7.36.2 \
    grpcio-health-checking==1.85.1
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

# A CA and a server certificate for the name gRPC's interop tests use, made fresh each run.
tls="$log/tls"
mkdir -p "$tls"
ec=(-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes)
openssl req -x509 "${ec[@]}" -keyout "$tls/ca.key" -out "$tls/ca.pem" -days 2 \
  -subj "/CN=rust-rpc interop test CA" 2>/dev/null
openssl req "${ec[@]}" -keyout "$tls/server.key" -out "$tls/server.csr" \
  -subj "/CN=foo.test.google.fr" 2>/dev/null
printf 'subjectAltName=DNS:foo.test.google.fr,DNS:*.test.google.fr\nbasicConstraints=CA:FALSE\n' \
  > "$tls/ext"
openssl x509 -req -in "$tls/server.csr" -CA "$tls/ca.pem" -CAkey "$tls/ca.key" \
  -CAcreateserial -out "$tls/server.pem" -days 2 -extfile "$tls/ext" 2>/dev/null
server_tls=(--use_tls --tls_cert_file "$tls/server.pem" --tls_key_file "$tls/server.key")
client_tls=(--use_tls --use_test_ca --ca_file "$tls/ca.pem" --server_host_override foo.test.google.fr)

# Every case but the two whose probe needs a server that sees whether a request arrived
# compressed, which grpcio's Python API cannot (interop/tests/self.rs runs them against ours).
against_grpcio=empty_unary,large_unary,client_streaming,server_streaming,ping_pong,empty_stream
against_grpcio+=,status_code_and_message,special_status_message,custom_metadata
against_grpcio+=,unimplemented_method,unimplemented_service,cancel_after_begin
against_grpcio+=,cancel_after_first_response,timeout_on_sleeping_server
against_grpcio+=,server_compressed_unary,server_compressed_streaming

# Runs every case both ways; $1 names the run, $2 is "tls", "gzip" (every message compressed
# by the side that sends it) or nothing.
both_ways() {
  local name=$1 server_flags=() client_flags=()
  if [ "${2:-}" = tls ]; then server_flags=("${server_tls[@]}"); client_flags=("${client_tls[@]}"); fi
  if [ "${2:-}" = gzip ]; then server_flags=(--compression gzip); client_flags=(--compression gzip); fi
  local port
  port=$(free_port)
  start_server "grpcio-server-$name" "$py" "$here/py/server.py" --port "$port" "${server_flags[@]}"
  echo "rust-rpc client -> grpcio server ($name):"
  timeout 300 "$bin/interop-client" --server_host 127.0.0.1 --server_port "$port" \
    --test_case "$against_grpcio" "${client_flags[@]}"
  port=$(free_port)
  start_server "rust-rpc-server-$name" "$bin/interop-server" --port "$port" "${server_flags[@]}"
  echo "grpcio client -> rust-rpc server ($name):"
  timeout 300 "$py" "$here/py/client.py" --server_host 127.0.0.1 --server_port "$port" \
    "${client_flags[@]}"
  if [ -z "${2:-}" ]; then
    timeout 60 "$py" "$here/py/health.py" --server_host 127.0.0.1 --server_port "$port"
  fi
}

both_ways cleartext
both_ways tls tls
both_ways gzip gzip
