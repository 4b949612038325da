"""cafebot's benchmarks: ``python -m bench`` (see bench/run.py and bench/RESULTS.md)."""
