#!/usr/bin/env bash
# A newcomer's first run, timed (issue 19): clone this repository's HEAD into a temporary folder,
# run `make dev` there as a new user would (a fresh HOME, so an empty pip cache and no saved
# kubectl dli settings), then `kubectl dli logs sparkpi`, `kubectl dli logs -f sparkpi` and
# `kubectl dli describe sparkpi` with only what a user has in the environment (env -i: PATH,
# HOME, KUBECONFIG), and `make dev-down`. Prints the time of each step; exits non-zero on a failure.
#
# Usage: hack/fresh-clone.sh [--short] [--keep]
#   --short  reuse your pip cache instead of an empty one (the cold download is what the full form
#            times); CI runs this form (tests/e2e/test_fresh_clone.py).
#   --keep   leave the clone (its path is printed) instead of deleting it.
#
# Shared with you in both forms, and so NOT cold: the Go tool cache (~/.cache/dli-operator, or
# $DLI_CACHE_DIR: kube-apiserver and etcd, built once by hack/build-tools.sh) and Go's own build
# and module caches. On a machine without them `make dev` builds the control plane first; time
# that alone with `DLI_CACHE_DIR=$(mktemp -d) GOCACHE=$(mktemp -d) hack/build-tools.sh control-plane`.
# The demo runs on free ports, so it does not collide with a `make dev` already running here.
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

SHORT='' KEEP=''
for arg in "$@"; do
  case "$arg" in
    --short) SHORT=1 ;;
    --keep) KEEP=1 ;;
    *) echo "usage: $0 [--short] [--keep]" >&2; exit 2 ;;
  esac
done

WORK=$(mktemp -d "${TMPDIR:-/tmp}/dli-fresh-clone.XXXXXX")
CLONE="$WORK/dli-operator"
NEW_HOME="$WORK/home"
mkdir -p "$NEW_HOME"
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
say() { printf '[fresh-clone] %s\n' "$*"; }
now() { date +%s%N; }
took() { local ms=$((($(now) - $1) / 1000000)); printf '%d.%d' $((ms / 1000)) $((ms % 1000 / 100)); }

# What `make dev` runs with: a new user's HOME, and your Go caches (see above).
PIP_CACHE=$NEW_HOME/.cache/pip
[ -n "$SHORT" ] && PIP_CACHE=$(python3 -m pip cache dir 2>/dev/null || echo "$HOME/.cache/pip")
DEMO_ENV=(
  PATH="$PATH" HOME="$NEW_HOME" LANG="${LANG:-C.UTF-8}"
  PIP_CACHE_DIR="$PIP_CACHE"
  DLI_CACHE_DIR="${DLI_CACHE_DIR:-$HOME/.cache/dli-operator}"
  GOCACHE="$(go env GOCACHE 2>/dev/null || echo "$HOME/.cache/go-build")"
  GOMODCACHE="$(go env GOMODCACHE 2>/dev/null || echo "$HOME/go/pkg/mod")"
  DLI_DEV_EMULATOR_PORT="$(free_port)" DLI_DEV_HEALTH_PORT="$(free_port)"
  DLI_DEV_METRICS_PORT="$(free_port)"
)
# What a user has when they type kubectl dli: nothing exported but these three.
USER_ENV=(PATH="$CLONE/.venv/bin:$PATH" HOME="$NEW_HOME" KUBECONFIG="$CLONE/.local/kubeconfig")

DOWN=''
cleanup() {
  if [ -z "$DOWN" ] && [ -f "$CLONE/.venv/.installed-dev" ]; then
    env -i "${DEMO_ENV[@]}" make -C "$CLONE" --no-print-directory dev-down >"$WORK/dev-down.log" 2>&1 \
      || say "make dev-down failed: see $WORK/dev-down.log"
  fi
  if [ -n "$KEEP" ]; then say "kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

step() {  # step NAME COMMAND...: run it, log to $WORK/NAME.log, print its time
  local name=$1 start
  shift
  start=$(now)
  if "$@" >"$WORK/$name.log" 2>&1; then
    say "$name: $(took "$start") s"
  else
    say "$name FAILED after $(took "$start") s; its output:"
    cat "$WORK/$name.log" >&2
    exit 1
  fi
}

say "cloning $(git -C "$REPO" rev-parse --short HEAD) into $CLONE ($([ -n "$SHORT" ] && echo "your pip cache" || echo "an empty pip cache"))"
git clone --quiet --no-hardlinks "$REPO" "$CLONE"
git -C "$CLONE" checkout --quiet --detach "$(git -C "$REPO" rev-parse HEAD)"

step make-dev env -i "${DEMO_ENV[@]}" make -C "$CLONE" --no-print-directory dev
say "make dev's closing lines:"
grep '^\[dev\]' "$WORK/make-dev.log" | tail -n 6 | sed 's/^/  /'
say "virtualenv: $(du -sm "$CLONE/.venv" | cut -f1) MB"

step logs env -i "${USER_ENV[@]}" kubectl dli logs sparkpi
step logs-follow env -i "${USER_ENV[@]}" timeout 120 kubectl dli logs -f sparkpi
grep -q "Successfully stopped SparkContext" "$WORK/logs-follow.log" \
  || { say "kubectl dli logs -f did not print the whole log:"; cat "$WORK/logs-follow.log" >&2; exit 1; }
step describe env -i "${USER_ENV[@]}" kubectl dli describe sparkpi
grep -q "Phase:        Succeeded" "$WORK/describe.log" \
  || { say "describe does not show the finished job:"; cat "$WORK/describe.log" >&2; exit 1; }
say "kubectl dli describe sparkpi:"
sed -n '1,4p' "$WORK/describe.log" | sed 's/^/  /'
step make-dev-down env -i "${DEMO_ENV[@]}" make -C "$CLONE" --no-print-directory dev-down
DOWN=1
say "ok"
