"""dli-operator: Huawei Cloud DLI Spark batch jobs as Kubernetes ``DliBatchJob`` resources."""

__version__ = "0.1.0"
