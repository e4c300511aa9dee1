"""Whether a DliBatchJob is kept in Git by Argo CD or Flux, and what that means for its TTL.

A job deleted by ``ttlSecondsAfterFinished`` while Argo CD (auto-sync) or Flux still has it in
Git is created again from Git at the next sync, and a new DliBatchJob is a new run: the Spark job
runs again (docs/gitops.md). The operator still applies the TTL, because it cannot see whether
auto-sync is on or the manifest already left Git, and a TTL the user asked for that silently does
nothing would be a trap of its own; it warns instead (a condition and a Warning Event).
"""

from __future__ import annotations

from collections.abc import Mapping

from dli_operator.resources.batchjob import DliBatchJob

# Where each tool marks the objects it applied. Argo CD: annotation tracking (the default since
# Argo CD 3.0) or its older default label. Flux: kustomize-controller's and helm-controller's
# ownership labels.
TRACKING_ANNOTATIONS = {"argocd.argoproj.io/tracking-id": "Argo CD"}
TRACKING_LABELS = {
    "app.kubernetes.io/instance": "Argo CD",
    "kustomize.toolkit.fluxcd.io/name": "Flux",
    "helm.toolkit.fluxcd.io/name": "Flux",
}


def tracker(labels: Mapping[str, str], annotations: Mapping[str, str]) -> str | None:
    """``"Argo CD (annotation argocd.argoproj.io/tracking-id)"`` and the like, or None."""
    for key, tool in TRACKING_ANNOTATIONS.items():
        if key in annotations:
            return f"{tool} (annotation {key})"
    for key, tool in TRACKING_LABELS.items():
        if key in labels:
            return f"{tool} (label {key})"
    return None


def ttl_risk(
    labels: Mapping[str, str], annotations: Mapping[str, str], ttl_seconds: int | None
) -> str | None:
    """The warning for a Git-managed job with ``ttlSecondsAfterFinished``, or None."""
    tool = tracker(labels, annotations)
    if tool is None or ttl_seconds is None:
        return None
    return (
        f"this DliBatchJob looks managed by {tool} and sets ttlSecondsAfterFinished="
        f"{ttl_seconds}: once it is deleted, a sync recreates it from Git and the Spark job runs "
        "again. Remove the TTL, or keep the schedule in Git instead (ScheduledDliBatchJob); "
        "see docs/gitops.md"
    )


def job_ttl_risk(job: DliBatchJob) -> str | None:
    meta = job.metadata
    return ttl_risk(meta.labels, meta.annotations, job.spec.ttl_seconds_after_finished)
