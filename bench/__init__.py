"""Benchmark harness (issue 5): ww-scheduler vs a Celery 5 + Redis baseline.

Run with `.venv/bin/python bench/run.py`; see bench/README.md."""
