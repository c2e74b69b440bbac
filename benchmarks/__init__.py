"""Benchmark suite for Promptomatix: fixed tasks built from data that PyPI packages ship (see data.py)."""
