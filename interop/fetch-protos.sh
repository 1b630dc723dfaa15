#!/usr/bin/env bash
# Fetches the gRPC project's .proto files as Debian's grpc-proto package ships them (about
# 40 kB; downloaded once, cached in ~/.cache/grpc-proto) and prints the include root, which
# holds grpc/testing/, grpc/health/ and grpc/reflection/.
set -euo pipefail
cache=${RUST_RPC_GRPC_PROTO_CACHE:-$HOME/.cache/grpc-proto}
root="$cache/usr/share/grpc-proto"
if [ ! -f "$root/grpc/testing/test.proto" ]; then
  mkdir -p "$cache/deb"
  (cd "$cache/deb" && { apt-get download grpc-proto >/dev/null 2>&1 ||
    { apt-get update -qq && apt-get download grpc-proto >/dev/null 2>&1; }; })
  dpkg-deb -x "$cache"/deb/grpc-proto_*.deb "$cache"
fi
echo "$root"
