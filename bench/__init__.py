"""Benchmark harness: saltare against its peers, run as ``python -m bench`` from the repo root.

Standard library only (the chart step runs in its own virtualenv with matplotlib).
"""
