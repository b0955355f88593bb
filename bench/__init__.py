"""Benchmarks for Cairn: ``python -m bench`` (see bench/README.md).

Each module registers its benchmarks with `bench.runner.benchmark`; the runner prints one table
per benchmark and writes a JSON report with the machine it ran on.
"""

from bench.runner import REGISTRY, Benchmark, Profile, Row, benchmark, discover, run

__all__ = ["REGISTRY", "Benchmark", "Profile", "Row", "benchmark", "discover", "run"]
