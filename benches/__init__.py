"""Microbenchmarks of the compiled hot path (see test_micro.py, report.py)."""
