"""The Kubernetes side as types: the DliBatchJob spec and status models. No I/O."""
