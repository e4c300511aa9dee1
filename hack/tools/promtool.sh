# promtool, to check and unit-test deploy/monitoring/prometheusrule.yaml (hack/build-tools.sh recipe).
# The Go module github.com/prometheus/prometheus tags v0.X.Y for Prometheus 3.X.Y; its go.mod has no
# replace directives, so a scratch module that requires it builds cmd/promtool directly.
PROMETHEUS_MODULE_VERSION="${PROMETHEUS_MODULE_VERSION:-0.316.0}"
TOOL_TAG="promtool-$PROMETHEUS_MODULE_VERSION"
TOOL_BINARIES="promtool"

build_tool() {
  # Module v0.316.0 is Prometheus 3.16.0: the module's minor is 300 + the release's minor.
  local rest="${PROMETHEUS_MODULE_VERSION#0.}"
  local release="3.$(( ${rest%%.*} - 300 )).${rest#*.}"
  go_build_in_scratch "$WORK/promtool-$PROMETHEUS_MODULE_VERSION" \
    github.com/prometheus/prometheus "v$PROMETHEUS_MODULE_VERSION" \
    github.com/prometheus/prometheus/cmd/promtool promtool \
    "-X github.com/prometheus/common/version.Version=$release"
}
