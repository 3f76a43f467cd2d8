"""Benchmark scripts: each prints a table (run them as ``.venv/bin/python benchmarks/<name>.py``)."""
