"""Synthetic cases driven through the pure domain core, shared by the tests and the benchmarks.

``samples.cases`` drives one case in memory (no Temporal, no database) with a moving clock;
``samples.histories`` generates realistic random case histories ready to append. Neither the
tests nor the benchmarks import each other: both import this package.
"""
