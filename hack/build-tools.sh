#!/usr/bin/env bash
# Builds one Go tool the tests, the demo or the docs use (kube-apiserver + etcd, promtool, helm,
# ...) from the Go module proxy, once per version, into one cache folder (DESIGN.md: "tools built
# from the Go module proxy share one build-and-cache script and cache directory").
#
# Usage: hack/build-tools.sh TOOL [BIN_DIR]   prints the folder holding the tool's binaries
#
# Each tool is a recipe in hack/tools/TOOL.sh that sets TOOL_TAG (name and version: the cache
# key), TOOL_BINARIES (what must exist for the cache to count) and defines build_tool, which
# writes the binaries into "$BIN" using $WORK for scratch modules.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
TOOL="${1:?usage: hack/build-tools.sh TOOL [BIN_DIR]}"
RECIPE="$HERE/tools/$TOOL.sh"
[ -f "$RECIPE" ] || { echo "unknown tool $TOOL (no $RECIPE)" >&2; exit 2; }

CACHE="${DLI_CACHE_DIR:-$HOME/.cache/dli-operator}"
WORK="$CACHE/build"
export GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS=-mod=mod

log() { printf '[build-tools %s] %s\n' "$TOOL" "$*" >&2; }

# A scratch module that requires MODULE@VERSION and builds PACKAGE into "$BIN/NAME".
# Recipes whose tool `go install` refuses (replace directives in its go.mod) add replaces first.
go_build_in_scratch() {
  local dir="$1" module="$2" version="$3" package="$4" name="$5"
  shift 5
  rm -rf "$dir" && mkdir -p "$dir" && cd "$dir"
  go mod init "local/$name" >/dev/null 2>&1
  log "resolving $module $version"
  go get "$module@$version"
  printf 'package main\nimport _ "%s"\n' "$package" > tools.go
  go mod tidy >/dev/null 2>&1 || true
  log "compiling $name"
  go build -trimpath -ldflags "-s -w $*" -o "$BIN/$name.tmp" "$package"
  mv "$BIN/$name.tmp" "$BIN/$name"
}

# shellcheck source=/dev/null
source "$RECIPE"
BIN="${2:-$CACHE/bin/$TOOL_TAG}"
mkdir -p "$BIN" "$WORK"

# One build at a time per tool: parallel callers (make targets, test sessions) wait for it.
exec 9>"$CACHE/.build-$TOOL.lock"
flock 9
for binary in $TOOL_BINARIES; do
  [ -x "$BIN/$binary" ] || { build_tool; break; }
done
echo "$BIN"
