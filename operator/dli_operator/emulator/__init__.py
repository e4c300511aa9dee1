"""A local stand-in for the DLI batch API, for the demo, the tests and the benchmarks."""
