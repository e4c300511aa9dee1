"""The list call (dli_02_0125): query parsing, filters, order and ``from``/``size`` paging.

The store hands over the smallest index that already satisfies one filter (one id, one name, one
queue, or the unfinished jobs when asking for a live state); only the other filters are checked
job by job, and a page with no extra filter is a plain slice. Listing a page of a 10,000-job queue
therefore costs the page, not the queue.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from dli_operator.emulator import timeline
from dli_operator.emulator.replies import bad_parameter
from dli_operator.emulator.state import Job, Store

DEFAULT_SIZE = 100  # the SDK's documented default page size (dli-api.md 2.5)
ORDERS = ("CREATE_TIME_DESC", "CREATE_TIME_ASC", "DURATION_DESC", "DURATION_ASC")
Predicate = Callable[[Job], bool]


@dataclass(frozen=True)
class ListQuery:
    """The list call's query parameters, by their wire names."""

    queue: str | None = None
    job_name: str | None = None
    job_id: str | None = None
    state: str | None = None
    owner: str | None = None
    start: int | None = None
    end: int | None = None
    order: str = "CREATE_TIME_DESC"
    offset: int = 0
    size: int = DEFAULT_SIZE


def parse_query(params: Mapping[str, str]) -> ListQuery:
    """Read the wire parameters; a malformed one is a DLI.0001 naming it."""
    queue, cluster = params.get("queue_name"), params.get("cluster_name")
    if queue and cluster and queue != cluster:
        raise bad_parameter("Parameters queue_name and cluster_name name different queues")
    state = params.get("state") or None
    if state is not None and state.lower() not in timeline.STATES:
        raise bad_parameter(f"Parameter state must be one of {', '.join(timeline.STATES)}")
    order = params.get("order") or "CREATE_TIME_DESC"
    if order not in ORDERS:
        raise bad_parameter(f"Parameter order must be one of {', '.join(ORDERS)}")
    return ListQuery(
        queue=queue or cluster or None,
        job_name=params.get("job_name") or None,
        job_id=params.get("job-id") or None,
        state=state.lower() if state else None,
        owner=params.get("owner") or None,
        start=integer(params, "start"),
        end=integer(params, "end"),
        order=order,
        offset=integer(params, "from") or 0,
        size=DEFAULT_SIZE if integer(params, "size") is None else int(params["size"]),
    )


def integer(params: Mapping[str, str], key: str) -> int | None:
    if key not in params or params[key] == "":
        return None
    try:
        value = int(params[key])
    except ValueError:
        value = -1
    if value < 0:
        raise bad_parameter(f"Parameter {key} must be an integer of at least 0")
    return value


def select(store: Store, query: ListQuery) -> tuple[int, list[Job]]:
    """``(total, page)`` for a query, newest first unless ``order`` says otherwise."""
    now_ms = store.now_ms()
    candidates, covered = _candidates(store, query)
    predicates = _predicates(query, now_ms, store.config.owner)
    checks = [check for name, check in predicates if name != covered]
    if not checks and query.order.startswith("CREATE_TIME"):
        return len(candidates), _page(candidates, query)
    matched = [job for job in candidates if all(check(job) for check in checks)]
    if query.order.startswith("DURATION"):
        matched.sort(key=lambda job: timeline.running_ms(job.segments, now_ms))
    return len(matched), _page(matched, query)


def _candidates(store: Store, query: ListQuery) -> tuple[Sequence[Job], str]:
    """The smallest index that satisfies one filter, and the name of that filter."""
    if query.job_id is not None:
        job = store.jobs.get(query.job_id)
        return ([job] if job else []), "job_id"
    options: list[tuple[int, str, Callable[[], Sequence[Job]]]] = []
    if query.job_name is not None:
        named = store.by_name.get(query.job_name, [])
        options.append((len(named), "job_name", lambda: named))
    if query.queue is not None:
        queued = store.by_queue.get(query.queue, [])
        options.append((len(queued), "queue", lambda: queued))
    if query.state is not None and query.state not in timeline.TERMINAL:
        live = store.settled()
        if query.queue is not None:
            live = store.live_by_queue.get(query.queue, {})
        options.append((len(live), "", lambda: list(live.values())))
    if not options:
        return store.all(), ""
    _, covered, take = min(options, key=lambda option: option[0])
    return take(), covered


def _predicates(query: ListQuery, now_ms: int, owner: str) -> list[tuple[str, Predicate]]:
    checks: list[tuple[str, Predicate]] = []
    if query.job_id is not None:
        checks.append(("job_id", lambda job: job.id == query.job_id))
    if query.job_name is not None:
        checks.append(("job_name", lambda job: job.name == query.job_name))
    if query.queue is not None:
        checks.append(("queue", lambda job: job.queue == query.queue))
    if query.state is not None:
        checks.append(("state", lambda job: job.state(now_ms) == query.state))
    if query.owner is not None:
        checks.append(("owner", lambda job: query.owner == owner))
    if query.start is not None:
        checks.append(("start", lambda job: job.create_ms >= (query.start or 0)))
    if query.end is not None:
        checks.append(("end", lambda job: job.create_ms <= (query.end or 0)))
    return checks


def _page(jobs: Sequence[Job], query: ListQuery) -> list[Job]:
    """One page; ``jobs`` is in ascending order, so a descending page is read from the end."""
    if query.order.endswith("_ASC"):
        return list(jobs[query.offset : query.offset + query.size])
    stop = len(jobs) - query.offset
    start = max(stop - query.size, 0)
    return list(reversed(jobs[start:stop])) if stop > 0 else []
