# kstatus, the health library of Flux's `wait: true`, kpt and Config Sync, as a small command:
# hack/tools/kstatus/main.go reads objects as JSON on stdin and prints kstatus's verdict
# (tests/unit/test_kstatus.py runs it over DliBatchJob and ScheduledDliBatchJob statuses).
# hack/build-tools.sh recipe; the Go source is copied into a scratch module that requires
# sigs.k8s.io/cli-utils at the version the issue was measured with.
KSTATUS_VERSION="${KSTATUS_VERSION:-0.37.2}"
# The source is part of the cache key, so an edited main.go is rebuilt.
TOOL_TAG="kstatus-$KSTATUS_VERSION-$(sha256sum "$HERE/tools/kstatus/main.go" | cut -c1-12)"
TOOL_BINARIES="kstatus"

build_tool() {
  local dir="$WORK/kstatus-$KSTATUS_VERSION"
  rm -rf "$dir" && mkdir -p "$dir"
  cp "$HERE/tools/kstatus/main.go" "$dir/main.go"
  cd "$dir"
  go mod init local/kstatus >/dev/null 2>&1
  log "resolving sigs.k8s.io/cli-utils v$KSTATUS_VERSION"
  go get "sigs.k8s.io/cli-utils@v$KSTATUS_VERSION"
  go mod tidy
  log "compiling kstatus"
  go build -trimpath -ldflags "-s -w" -o "$BIN/kstatus.tmp" .
  mv "$BIN/kstatus.tmp" "$BIN/kstatus"
}
