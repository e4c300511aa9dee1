# kube-apiserver and etcd for the test control plane (hack/build-tools.sh recipe).
# Why a scratch module for kube-apiserver: `go install k8s.io/kubernetes/cmd/kube-apiserver@v` is
# refused because k/k's go.mod carries replace directives (golang/go#44840, kubernetes#79384).
K8S_VERSION="${K8S_VERSION:-1.36.3}"
ETCD_VERSION="${ETCD_VERSION:-3.6.16}"
TOOL_TAG="k8s-$K8S_VERSION-etcd-$ETCD_VERSION"
TOOL_BINARIES="etcd kube-apiserver"

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

build_tool() {
  [ -x "$BIN/etcd" ] || go_build_in_scratch "$WORK/etcd-$ETCD_VERSION" \
    go.etcd.io/etcd/server/v3 "v$ETCD_VERSION" go.etcd.io/etcd/server/v3 etcd
  [ -x "$BIN/kube-apiserver" ] || build_kube_apiserver
}
