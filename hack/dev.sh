#!/usr/bin/env bash
# The demo behind `make dev` / `make dev-down`: a control plane (or the cluster in $KUBECONFIG),
# the CRDs, the DLI emulator on 127.0.0.1:8099, the operator, an example job and a schedule.
# Running `up` again restarts only what is not running; the emulator keeps its jobs in a state
# file and the control plane keeps etcd's data, so nothing is lost.
set -euo pipefail
cd "$(dirname "$0")/.."

# The folder and ports can be moved (tests/e2e/test_dev_demo.py runs the demo beside another).
LOCAL=${DLI_DEV_DIR:-.local}
BIN=${DLI_DEV_BIN:-.venv/bin}
KCFG=$LOCAL/kubeconfig
EMULATOR_PORT=${DLI_DEV_EMULATOR_PORT:-8099}
HEALTH_PORT=${DLI_DEV_HEALTH_PORT:-8080}
METRICS_PORT=${DLI_DEV_METRICS_PORT:-9090}
PROJECT_ID=0123456789abcdef0123456789abcdef
# The demo's policy (docs/security.md): the default credentials serve the namespaces listed here
# and any namespace carrying the label below, which admits another without a restart.
ADMITTED=default
ADMIT_LABEL=dli.dev/default-credentials=allowed
# SPARK=1 (`make dev-spark`): the emulator's spark back end runs examples/pyspark-pi.yaml for real.
BACKEND=scripted EMULATOR_FLAGS=(--state-file "$LOCAL/emulator-state.json")
if [ -n "${SPARK:-}" ]; then
  BACKEND=spark EMULATOR_FLAGS=(--backend spark --state-file "$LOCAL/emulator-spark-state.json"
    --obs-root "$LOCAL/obs" --packages-dir "$LOCAL/packages" --spark-workdir "$LOCAL/spark")
fi
mkdir -p "$LOCAL"

say() { printf '[dev] %s\n' "$*"; }
same_file() { [ -e "$2" ] && [ "$(realpath -m "$1")" = "$(realpath -m "$2")" ]; }
alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }
kc() { kubectl --kubeconfig "$KCFG" "$@"; }

wait_for_port() {
  for _ in $(seq 1 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.2
  done
  say "nothing listens on 127.0.0.1:$1; see $LOCAL/*.log"; return 1
}

cluster_up() {
  if [ -n "${KUBECONFIG:-}" ] && ! same_file "$KUBECONFIG" "$KCFG" \
      && kubectl get --raw /readyz >/dev/null 2>&1; then
    say "using the cluster in KUBECONFIG=$KUBECONFIG"
    # Through a temporary file: KUBECONFIG may name $KCFG itself (the README suggests exporting
    # it), and redirecting into the file kubectl reads would truncate it first.
    kubectl config view --raw --minify > "$KCFG.tmp"
    mv "$KCFG.tmp" "$KCFG"
  elif kc get --raw /readyz >/dev/null 2>&1; then
    say "control plane already running"
  else
    "$BIN/dli-operator" cluster up --workdir "$LOCAL/cluster" --kubeconfig "$KCFG"
  fi
  kc apply --server-side --force-conflicts -f crds/dlibatchjobs.dli.dev.yaml \
    -f crds/scheduleddlibatchjobs.dli.dev.yaml >/dev/null
  kc wait --for=condition=Established crd/dlibatchjobs.dli.dev \
    crd/scheduleddlibatchjobs.dli.dev --timeout=60s >/dev/null
  # Kubernetes 1.36+: the API server adds the finalizer, one write per job fewer (issue 18).
  if kc api-resources --api-group=admissionregistration.k8s.io -o name 2>/dev/null \
      | grep -qx 'mutatingadmissionpolicies.admissionregistration.k8s.io'; then
    kc apply --server-side --force-conflicts \
      -f deploy/components/finalizer-policy/policy.yaml >/dev/null
    admission_ready
  fi
}

# A new or changed MutatingAdmissionPolicy is compiled against the CRD's schema a moment later;
# until then a create is answered 503 "Resource kind ... not found" (seen with Kubernetes 1.36):
# wait until a server-side dry run of a create passes admission.
admission_ready() {
  local probe='{"apiVersion":"dli.dev/v1alpha1","kind":"DliBatchJob","metadata":{"generateName":"probe-"},"spec":{"queue":"default","file":"obs://bucket/probe.py"}}'
  for _ in $(seq 1 120); do
    echo "$probe" | kc create --dry-run=server -n default -f - >/dev/null 2>&1 && return 0
    sleep 0.5
  done
  echo "$probe" | kc create --dry-run=server -n default -f - >/dev/null
}

emulator_up() {
  [ "$(cat "$LOCAL/emulator.backend" 2>/dev/null || echo scripted)" = "$BACKEND" ] || stop "$LOCAL/emulator.pid"
  if alive "$LOCAL/emulator.pid"; then say "emulator already running"; return; fi
  nohup "$BIN/dli-operator" emulator --host 127.0.0.1 --port "$EMULATOR_PORT" \
    --project-id "$PROJECT_ID" "${EMULATOR_FLAGS[@]}" \
    >> "$LOCAL/emulator.log" 2>&1 &
  echo $! > "$LOCAL/emulator.pid"
  echo "$BACKEND" > "$LOCAL/emulator.backend"
  wait_for_port "$EMULATOR_PORT"
  say "emulator on http://127.0.0.1:$EMULATOR_PORT (control API: /_emulator/jobs)"
}

operator_up() {
  if alive "$LOCAL/operator.pid"; then say "operator already running"; return; fi
  KUBECONFIG="$KCFG" \
  DLI_OPERATOR_DLI__ENDPOINT="http://127.0.0.1:$EMULATOR_PORT" \
  DLI_OPERATOR_DLI__ALLOW_INSECURE_ENDPOINT=true \
  DLI_OPERATOR_DLI__PROJECT_ID="$PROJECT_ID" \
  DLI_OPERATOR_DLI__ACCESS_KEY=EMULATORAK \
  DLI_OPERATOR_DLI__SECRET_KEY=EMULATORSK \
  DLI_OPERATOR_RECONCILE__POLL_INTERVAL_SECONDS=2 \
  DLI_OPERATOR_METRICS__PORT="$METRICS_PORT" \
  DLI_OPERATOR_POLICY__DEFAULT_CREDENTIALS_NAMESPACES="$ADMITTED" \
  DLI_OPERATOR_POLICY__DEFAULT_CREDENTIALS_NAMESPACE_SELECTOR="$ADMIT_LABEL" \
  DLI_OPERATOR_RECONCILE__BLOCKED_RETRY_SECONDS=5 \
  nohup "$BIN/dli-operator" run --all-namespaces \
    --liveness "http://127.0.0.1:$HEALTH_PORT/healthz" >> "$LOCAL/operator.log" 2>&1 &
  echo $! > "$LOCAL/operator.pid"
  say "operator running (pid $(cat "$LOCAL/operator.pid"), log $LOCAL/operator.log)"
}

# `kubectl dli logs` on the demo with nothing exported: the emulator's endpoint, project and keys
# saved for the demo's kubeconfig context (kubectl dli configure; docs/observability.md). The keys
# are the emulator's, not a secret; they come through the environment, never the command line.
# With a cluster of the user's (KUBECONFIG), their context's saved settings are left alone.
plugin_up() {
  local context
  context=$(kc config current-context)
  if [ "$context" != dli-local ]; then
    say "kubectl dli: your context $context keeps its own settings; for the demo's, run:"
    say "  HUAWEICLOUD_SDK_AK=EMULATORAK HUAWEICLOUD_SDK_SK=EMULATORSK kubectl dli configure \\"
    say "    --endpoint http://127.0.0.1:$EMULATOR_PORT --allow-insecure-endpoint --project-id $PROJECT_ID --credentials-from-env"
    return 0
  fi
  KUBECONFIG="$KCFG" HUAWEICLOUD_SDK_AK=EMULATORAK HUAWEICLOUD_SDK_SK=EMULATORSK \
    "$BIN/kubectl-dli" configure --endpoint "http://127.0.0.1:$EMULATOR_PORT" \
    --allow-insecure-endpoint --project-id "$PROJECT_ID" --credentials-from-env >/dev/null
  say "kubectl dli settings saved for context dli-local (kubectl dli configure --show)"
}

# What the demo admits, and the commands to try, as the last lines of `make dev`.
closing_lines() {
  say "default credentials: namespace(s) $ADMITTED, and any labelled $ADMIT_LABEL; admit another with:"
  say "  kubectl --kubeconfig $KCFG label namespace NAME $ADMIT_LABEL"
  say "try:  export KUBECONFIG=$(realpath -m "$KCFG") PATH=$(realpath -m "$BIN"):\$PATH"
  say "      kubectl dli logs $1 -f    # the driver log, from the emulator"
  say "      kubectl dli describe $1   # status, attempts, conditions, Events"
}

# The example schedule, every minute instead of nightly, so the demo shows its runs at once.
schedule_up() {
  sed 's|schedule: "0 2 \* \* \*"|schedule: "* * * * *"|' examples/scheduled-sparkpi.yaml \
    | kc apply -n default -f - >/dev/null
  say "example schedule nightly-sparkpi runs every minute:  kubectl --kubeconfig $KCFG get dlischedules"
}

example_up() {
  schedule_up
  kc apply -n default -f examples/sparkpi.yaml >/dev/null
  for _ in $(seq 1 120); do
    batch=$(kc get dlibatchjob sparkpi -n default -o jsonpath='{.status.batchId}' 2>/dev/null || true)
    if [ -n "$batch" ]; then
      say "example job sparkpi submitted as DLI batch $batch"
      say "watch it:  kubectl --kubeconfig $KCFG get dlibatchjobs -w"
      return 0
    fi
    sleep 0.5
  done
  say "sparkpi was not submitted within 60 s; see $LOCAL/operator.log"; return 1
}

spark_example_up() {
  mkdir -p "$LOCAL/obs/dli-demo/jobs"
  cp examples/pyspark_pi.py "$LOCAL/obs/dli-demo/jobs/pyspark_pi.py"  # obs://dli-demo/jobs/...
  kc apply -n default -f examples/pyspark-pi.yaml >/dev/null
  say "pyspark-pi submitted: Spark computes Pi on this machine (a minute or so)"
  for _ in $(seq 1 300); do
    phase=$(kc get dlibatchjob pyspark-pi -n default -o jsonpath='{.status.phase}' 2>/dev/null || true)
    case "$phase" in
      Succeeded) say "status.log: $(kc get dlibatchjob pyspark-pi -n default -o jsonpath='{.status.log[-1:]}')"
                 batch=$(kc get dlibatchjob pyspark-pi -n default -o jsonpath='{.status.batchId}')
                 say "whole driver log: $LOCAL/spark/$batch/driver.log"; return 0 ;;
      Failed) say "pyspark-pi failed: $(kc get dlibatchjob pyspark-pi -n default -o jsonpath='{.status.message}')"; return 1 ;;
    esac
    sleep 1
  done
  say "pyspark-pi did not finish within 300 s; see $LOCAL/emulator.log"; return 1
}

stop() {
  if alive "$1"; then
    kill "$(cat "$1")"
    for _ in $(seq 1 100); do alive "$1" || break; sleep 0.1; done
    say "stopped $(basename "$1" .pid)"
  fi
  rm -f "$1"
}

case "${1:-up}" in
  up)
    cluster_up; emulator_up; operator_up; plugin_up
    if [ -n "${SPARK:-}" ]; then spark_example_up; closing_lines pyspark-pi
    else example_up; closing_lines sparkpi; fi
    ;;
  down)
    stop "$LOCAL/operator.pid"; stop "$LOCAL/emulator.pid"
    "$BIN/dli-operator" cluster down --workdir "$LOCAL/cluster" >/dev/null && say "control plane stopped"
    ;;
  *) echo "usage: $0 up|down" >&2; exit 2 ;;
esac
