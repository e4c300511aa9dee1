"""``kubectl dli``: a kubectl plugin for DliBatchJobs (logs, describe, rerun, suspend, resume).

Installed as the console script ``kubectl-dli``, so ``kubectl dli ...`` finds it on PATH
(kubectl's plugin convention). It acts as the user: their kubeconfig, their RBAC, and DLI
credentials from the job's Secret, else the user's own: options, environment, or the settings
``kubectl dli configure`` saved for the kubeconfig context (``access.py``, ``config.py``).
"""
