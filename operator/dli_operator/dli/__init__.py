"""The DLI batch API client: wire models, signing, errors and an async client.

No Kubernetes here, and no re-exports: importing ``dli.models`` must not pull in httpx.
"""
