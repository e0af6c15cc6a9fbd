"""Benchmarks with recorded results (see README.md). A regular package on purpose: opacus 1.6 installs a top-level
`benchmarks` package of its own into site-packages, which would otherwise shadow this folder for `python -m benchmarks.X`."""
