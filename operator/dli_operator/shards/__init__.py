"""Sharding across replicas: which replica owns which job (issue 18).

``ring`` is pure: consistent hashing of ``namespace/name`` keys onto member ids. ``membership``
keeps the ring's members from one Kubernetes Lease per replica, and fences this replica out of
the ring when its own Lease may have expired. Callers import from the submodules.
"""
