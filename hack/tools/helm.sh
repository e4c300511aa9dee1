# helm, for rendering, linting and packaging the chart in deploy/helm (hack/build-tools.sh recipe).
# Helm 3: the chart is apiVersion v2, which Helm 3 and Helm 4 both install; testing with 3 keeps
# the chart working for the clusters most users still drive with Helm 3.
HELM_VERSION="${HELM_VERSION:-3.22.0}"
TOOL_TAG="helm-$HELM_VERSION"
TOOL_BINARIES="helm"

build_tool() {
  # Without the version stamp `helm version` says v3.x-dev and `helm lint` checks charts'
  # kubeVersion against a made-up Kubernetes version.
  go_build_in_scratch "$WORK/helm-$HELM_VERSION" helm.sh/helm/v3 "v$HELM_VERSION" \
    helm.sh/helm/v3/cmd/helm helm \
    "-X helm.sh/helm/v3/internal/version.version=v$HELM_VERSION"
}
