"""The ScheduledDliBatchJob CRD on a real API server: what ``kubectl apply`` refuses, and how.

``schedule`` and ``timeZone`` are checked by CEL (a zone by the API server's own tz database),
the job template by DliBatchJob's own rules, each message naming the field where it sits.
"""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
import yaml

EXPLAIN_TIMEOUT_SECONDS = 30.0


def manifest(**spec: Any) -> dict[str, Any]:
    template = {"queue": "default", "file": "obs://b/app.py", **spec.pop("template", {})}
    return {
        "apiVersion": "dli.dev/v1alpha1",
        "kind": "ScheduledDliBatchJob",
        "metadata": {"name": spec.pop("name", "nightly")},
        "spec": {"schedule": "0 2 * * *", "jobTemplate": {"spec": template}, **spec},
    }


def dry_run(kube: Any, namespace: str, doc: dict[str, Any]) -> tuple[int, str]:
    out = kube.kubectl(
        "apply", "-n", namespace, "--dry-run=server", "-f", "-", input=yaml.safe_dump(doc),
        check=False,
    )  # fmt: skip
    return out.returncode, out.stderr


@pytest.mark.parametrize(
    ("spec", "fragment"),
    [
        ({"schedule": "61 * * * *"}, "spec.schedule: must be five cron fields"),
        ({"schedule": "TZ=Asia/Tokyo 0 2 * * *"}, "a time zone goes in spec.timeZone"),
        ({"schedule": "@every 1h"}, "spec.schedule: must be five cron fields"),
        ({"timeZone": "Europe/Pariss"}, "unknown time zone Europe/Pariss"),
        ({"timeZone": "+08:00"}, "spec.timeZone: must be an IANA time zone name"),
        ({"timeZone": "Local"}, "spec.timeZone: must be an IANA time zone name"),
        ({"concurrencyPolicy": "Sometimes"}, "spec.concurrencyPolicy: Unsupported value"),
        ({"startingDeadlineSeconds": -1}, "spec.startingDeadlineSeconds"),
        ({"successfulJobsHistoryLimit": 101}, "spec.successfulJobsHistoryLimit"),
        ({"name": "n" * 53}, "metadata.name: at most 52 characters"),
        ({"template": {"queue": "bad queue"}}, "spec.jobTemplate.spec.queue: must be a DLI queue"),
        ({"template": {"maxRetryTimes": 101}}, "spec.jobTemplate.spec.maxRetryTimes"),
        ({"template": {"file": "obs://b/a.jar"}}, "spec.jobTemplate.spec.className: required"),
        ({"template": {"unknown": 1}}, 'unknown field "spec.jobTemplate.spec.unknown"'),
    ],
    ids=lambda v: str(v)[:40],
)
def test_a_bad_schedule_is_refused_naming_the_field(
    kube: Any, namespace: str, spec: dict[str, Any], fragment: str
) -> None:
    code, message = dry_run(kube, namespace, manifest(**spec))
    assert code != 0
    assert fragment in message


@pytest.mark.parametrize(
    "spec",
    [
        {"schedule": "*/5 * * * *", "timeZone": "America/New_York"},
        {"schedule": "0 0 29 2 *", "timeZone": "Asia/Kolkata"},
        {"schedule": "@weekly", "timeZone": "Etc/GMT+5"},
        {"schedule": "30 1 * * MON-FRI", "timeZone": "UTC", "concurrencyPolicy": "Replace"},
    ],
)
def test_a_good_schedule_is_accepted(kube: Any, namespace: str, spec: dict[str, Any]) -> None:
    code, message = dry_run(kube, namespace, manifest(**spec))
    assert code == 0, message


def test_kubectl_shows_the_schedule_columns_and_explains_the_fields(
    kube: Any, namespace: str
) -> None:
    kube.kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump(manifest()))
    table = kube.kubectl("get", "dlischedule", "-n", namespace).stdout
    header = table.splitlines()[0].split()
    assert header[:6] == ["NAME", "SCHEDULE", "TIMEZONE", "SUSPEND", "ACTIVE", "LAST"]
    deadline = time.monotonic() + EXPLAIN_TIMEOUT_SECONDS
    while True:  # the OpenAPI document follows a new CRD after a moment
        out = kube.kubectl(
            "explain", "scheduleddlibatchjob.spec.timeZone", "-n", namespace, check=False
        )
        if out.returncode == 0 or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert "IANA time zone" in out.stdout
    stored = json.loads(
        kube.kubectl("get", "dlischedule", "nightly", "-n", namespace, "-o", "json").stdout
    )
    assert "concurrencyPolicy" not in stored["spec"]  # defaults are the operator's, not stored
