"""Benchmarks: `make bench`. Each prints its figures next to a baseline measured in the
same run, as a ratio, since these machines are shared and noisy."""
