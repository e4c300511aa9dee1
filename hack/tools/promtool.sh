# promtool, to check and unit-test deploy/monitoring/prometheusrule.yaml (hack/build-tools.sh recipe).
# The Go module github.com/prometheus/prometheus tags v0.X.Y for Prometheus 3.X.Y. Its go.mod has no
# replace directives, so `go install cmd/promtool@version` builds it with exactly the versions
# Prometheus pins, and fetches only the modules cmd/promtool imports (a scratch module's
# `go mod tidy` fetched every module of the whole Prometheus tree).
# The build tag remove_all_sd drops the service-discovery plugins (AWS, Azure, GCE, ...; the
# file and http ones stay: prometheus/plugins/minimum.go), which the tests never use: they run
# `check rules`, `test rules` and `check metrics` (issue 19: a cold `make test` within 20 min).
# Debian's packaged promtool is 2.42, before Prometheus 3's rule-evaluation changes, so no.
PROMETHEUS_MODULE_VERSION="${PROMETHEUS_MODULE_VERSION:-0.316.0}"
TOOL_TAG="promtool-$PROMETHEUS_MODULE_VERSION-nosd"
TOOL_BINARIES="promtool"

build_tool() {
  # Module v0.316.0 is Prometheus 3.16.0: the module's minor is 300 + the release's minor.
  local rest="${PROMETHEUS_MODULE_VERSION#0.}"
  local release="3.$(( ${rest%%.*} - 300 )).${rest#*.}"
  local out="$WORK/promtool-$PROMETHEUS_MODULE_VERSION-bin"
  rm -rf "$out" && mkdir -p "$out"
  log "building github.com/prometheus/prometheus/cmd/promtool@v$PROMETHEUS_MODULE_VERSION"
  # `go install pkg@version` ignores any go.mod around it and refuses -mod=mod.
  GOFLAGS= GOBIN="$out" go install -trimpath -tags remove_all_sd \
    -ldflags "-s -w -X github.com/prometheus/common/version.Version=$release" \
    "github.com/prometheus/prometheus/cmd/promtool@v$PROMETHEUS_MODULE_VERSION"
  mv "$out/promtool" "$BIN/promtool"
}
