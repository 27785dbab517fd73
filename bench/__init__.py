"""Benchmark scripts behind `llmkit bench NAME`: each prints its figures (and writes JSON and a plot where said)."""
