#!/usr/bin/env bash
# Builds the Go client of ctxmem from proto/ctxmem/v1/*.proto with Debian's toolchain only:
# golang-go, protoc + protoc-gen-go + protoc-gen-go-grpc, and the Go libraries Debian ships in
# /usr/share/gocode (golang-google-grpc-dev, golang-google-protobuf-dev). GOPATH mode
# (GO111MODULE=off) with GOPROXY=off: nothing is fetched.
#   clients/go/build.sh OUT_DIR      -> OUT_DIR/bin/ctxmem-go
# Exit 3 (and a line saying what is missing) when the toolchain is not installed.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$here/../.."
out="$(mkdir -p "${1:?usage: build.sh OUT_DIR}" && cd "$1" && pwd)"
gocode=/usr/share/gocode
missing() { echo "build.sh: $* (scripts/setup.sh installs it)" >&2; exit 3; }
for tool in go protoc protoc-gen-go protoc-gen-go-grpc; do
  command -v "$tool" >/dev/null || missing "$tool not found"
done
for lib in google.golang.org/grpc google.golang.org/protobuf; do
  [ -d "$gocode/src/$lib" ] || missing "$gocode/src/$lib not found (Debian golang-*-dev)"
done

# grpc-go 1.33 marshals through github.com/golang/protobuf; its 1.3 version predates the
# protobuf APIv2 messages protoc-gen-go makes (and crashes on them): 1.4+ is needed.
if ! grep -qs "google.golang.org/protobuf" "$gocode/src/github.com/golang/protobuf/proto/"*.go; then
  missing "github.com/golang/protobuf is older than 1.4 (golang-github-golang-protobuf-1-5-dev)"
fi

gopath="$out/gopath"
pkg=ctxmem/gen/ctxmemv1  # import path of the generated package
rm -rf "$gopath/src/ctxmem"
mkdir -p "$gopath/src/$pkg" "$gopath/src/ctxmem/cmd/ctxmem-go" "$out/bin"
maps=()
for p in memory compressor decoder; do maps+=("Mctxmem/v1/$p.proto=$pkg"); done
go_opts=(); grpc_opts=()
for m in "${maps[@]}"; do go_opts+=("--go_opt=$m"); grpc_opts+=("--go-grpc_opt=$m"); done
protoc -I"$root/proto" --go_out="$gopath/src" "${go_opts[@]}" \
  --go-grpc_out="$gopath/src" "${grpc_opts[@]}" \
  "$root"/proto/ctxmem/v1/{memory,compressor,decoder}.proto
cp "$here"/cmd/ctxmem-go/*.go "$gopath/src/ctxmem/cmd/ctxmem-go/"
GO111MODULE=off GOPROXY=off GOFLAGS= GOPATH="$gopath:$gocode" \
  go build -o "$out/bin/ctxmem-go" ctxmem/cmd/ctxmem-go
echo "$out/bin/ctxmem-go"
