#!/usr/bin/env bash
# Builds kube-apiserver and etcd from the Go module proxy, once per version, into a cache folder.
# Why a scratch module: `go install k8s.io/kubernetes/cmd/kube-apiserver@v` is refused because
# k/k's go.mod carries replace directives (golang/go#44840, kubernetes/kubernetes#79384).
# Usage: hack/build-control-plane.sh [BIN_DIR]   (prints the bin dir on success)
set -euo pipefail

K8S_VERSION="${K8S_VERSION:-1.36.3}"
ETCD_VERSION="${ETCD_VERSION:-3.6.16}"
CACHE="${DLI_CACHE_DIR:-$HOME/.cache/dli-operator}"
BIN="${1:-$CACHE/bin/k8s-$K8S_VERSION-etcd-$ETCD_VERSION}"
WORK="$CACHE/build"
export GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS=-mod=mod

mkdir -p "$BIN" "$WORK"
log() { printf '[build-control-plane] %s\n' "$*" >&2; }

build_kube_apiserver() {
  local minor="${K8S_VERSION#1.}"; minor="${minor%%.*}"
  local patch="${K8S_VERSION##*.}"
  local dir="$WORK/kas-$K8S_VERSION"
  rm -rf "$dir" && mkdir -p "$dir" && cd "$dir"
  go mod init local/kas >/dev/null 2>&1
  # The replace list is derived from this exact release's go.mod, fetched through the proxy.
  local gomod
  gomod=$(go mod download -json "k8s.io/kubernetes@v$K8S_VERSION" | python3 -c 'import json,sys; print(json.load(sys.stdin)["GoMod"])')
  local godebug
  godebug=$(sed -n 's/^godebug default=\(.*\)$/\1/p' "$gomod" | head -n1)
  for m in $(sed -n 's|^[[:space:]]*\(k8s.io/[^ ]*\) => ./staging/src/.*|\1|p' "$gomod"); do
    go mod edit -replace="$m=$m@v0.$minor.$patch"
  done
  [ -n "$godebug" ] && go mod edit -godebug="default=$godebug"
  log "resolving k8s.io/kubernetes v$K8S_VERSION"
  go get "k8s.io/kubernetes@v$K8S_VERSION" >/dev/null 2>&1 || go get "k8s.io/kubernetes@v$K8S_VERSION"
  printf 'package main\nimport _ "k8s.io/kubernetes/cmd/kube-apiserver"\n' > tools.go
  go mod tidy >/dev/null 2>&1 || true
  log "compiling kube-apiserver v$K8S_VERSION"
  go build -trimpath -ldflags "-s -w \
    -X k8s.io/component-base/version.gitVersion=v$K8S_VERSION \
    -X k8s.io/component-base/version.gitMajor=1 \
    -X k8s.io/component-base/version.gitMinor=$minor" \
    -o "$BIN/kube-apiserver.tmp" k8s.io/kubernetes/cmd/kube-apiserver
  mv "$BIN/kube-apiserver.tmp" "$BIN/kube-apiserver"
}

build_etcd() {
  local dir="$WORK/etcd-$ETCD_VERSION"
  rm -rf "$dir" && mkdir -p "$dir" && cd "$dir"
  go mod init local/etcd >/dev/null 2>&1
  log "resolving etcd v$ETCD_VERSION"
  go get "go.etcd.io/etcd/server/v3@v$ETCD_VERSION"
  printf 'package main\nimport _ "go.etcd.io/etcd/server/v3"\n' > tools.go
  log "compiling etcd v$ETCD_VERSION"
  go build -trimpath -ldflags "-s -w" -o "$BIN/etcd.tmp" go.etcd.io/etcd/server/v3
  mv "$BIN/etcd.tmp" "$BIN/etcd"
}

[ -x "$BIN/etcd" ] || build_etcd
[ -x "$BIN/kube-apiserver" ] || build_kube_apiserver
echo "$BIN"
