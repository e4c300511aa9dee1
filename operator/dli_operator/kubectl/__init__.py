"""``kubectl dli``: a kubectl plugin for DliBatchJobs (logs, describe, rerun, suspend, resume).

Installed as the console script ``kubectl-dli``, so ``kubectl dli ...`` finds it on PATH
(kubectl's plugin convention). It acts as the user: their kubeconfig, their RBAC, and DLI
credentials from the job's Secret or the user's environment (``access.py``).
"""
