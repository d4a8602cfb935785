"""Helpers that are not the core: a loopback client peer for tests and benchmarks."""
