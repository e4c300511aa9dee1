"""The operator's own engine: a cache of the objects, a work queue with timers, and workers.

It replaces kopf's one daemon per job (issue 18): kopf stopped every daemon when a replica was
paused and respawned one only on a later watch event, so a job with no later event was
stranded. Here time and concurrency belong to the queue, as in controller-runtime: a watch
event or a timer makes a key due, a bounded pool of workers steps due keys, a key is never
stepped by two workers at once, and a finished job has no task and no timer. Nothing waits
for kopf.

- ``queue``: the work queue and its timers (due now, at the next poll, at a retry, a TTL).
- ``cache``: what is known of each object (full bodies of live jobs, a few fields of finished).
- ``informer``: list and watch, feeding the cache and the queue.
- ``events``: Kubernetes Events, posted in the background.
- ``controller``: the workers, the finalizer, and ownership (shards).
"""
