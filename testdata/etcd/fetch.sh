#!/usr/bin/env bash
# Fetches etcd for the registry tests and the .proto files its API is generated from, as
# Debian ships them, and prints the cache root (downloaded once, about 10 MB, cached in
# ~/.cache/rust-rpc-etcd). The packages are unpacked with dpkg-deb, not installed, so no root
# is needed after the download and nothing else is pulled in:
#   etcd-server                        usr/bin/etcd (3.4)
#   golang-etcd-server-dev             usr/share/gocode/src/go.etcd.io/etcd/**/*.proto
#   golang-github-gogo-protobuf-dev    usr/share/gocode/src/github.com/gogo/protobuf/gogoproto/gogo.proto
#   golang-github-gogo-googleapis-dev  usr/share/gocode/src/github.com/gogo/googleapis/google/api/*.proto
set -euo pipefail
cache=${RUST_RPC_ETCD_CACHE:-$HOME/.cache/rust-rpc-etcd}
packages=(etcd-server golang-etcd-server-dev golang-github-gogo-protobuf-dev
  golang-github-gogo-googleapis-dev)
if [ ! -x "$cache/usr/bin/etcd" ] ||
  [ ! -f "$cache/usr/share/gocode/src/github.com/gogo/googleapis/google/api/http.proto" ]; then
  mkdir -p "$cache/deb"
  (cd "$cache/deb" && { apt-get download "${packages[@]}" >/dev/null 2>&1 ||
    { apt-get update -qq && apt-get download "${packages[@]}" >/dev/null 2>&1; }; })
  for package in "${packages[@]}"; do
    dpkg-deb -x "$cache"/deb/"${package}"_*.deb "$cache"
  done
fi
echo "$cache"
