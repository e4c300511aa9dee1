# helm, for rendering, linting and packaging the chart in deploy/helm (hack/build-tools.sh recipe).
# Helm 3: the chart is apiVersion v2, which Helm 3 and Helm 4 both install; testing with 3 keeps
# the chart working for the clusters most users still drive with Helm 3.
HELM_VERSION="${HELM_VERSION:-3.22.0}"
TOOL_TAG="helm-$HELM_VERSION"
TOOL_BINARIES="helm"

build_tool() {
  # The stamps of Helm's own Makefile: without them `helm version` says v3.x-dev, and `helm
  # template` / `helm lint` check charts against Kubernetes 1.20 (the unstamped default), which
  # fails any chart whose kubeVersion needs CEL. The Kubernetes minor is k8s.io/client-go's in
  # this release's go.mod, as the Makefile derives it.
  local gomod minor
  gomod=$(go mod download -json "helm.sh/helm/v3@v$HELM_VERSION" | python3 -c 'import json,sys; print(json.load(sys.stdin)["GoMod"])')
  minor=$(sed -n 's|^[[:space:]]*k8s.io/client-go v0\.\([0-9]*\)\..*|\1|p' "$gomod" | head -n1)
  go_build_in_scratch "$WORK/helm-$HELM_VERSION" helm.sh/helm/v3 "v$HELM_VERSION" \
    helm.sh/helm/v3/cmd/helm helm \
    "-X helm.sh/helm/v3/internal/version.version=v$HELM_VERSION" \
    "-X helm.sh/helm/v3/pkg/chartutil.k8sVersionMajor=1" \
    "-X helm.sh/helm/v3/pkg/chartutil.k8sVersionMinor=$minor" \
    "-X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMajor=1" \
    "-X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMinor=$minor"
}
