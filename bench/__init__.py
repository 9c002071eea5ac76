"""Benchmarks of the project (not tests): each script writes JSON and a markdown table under bench/results/.

Run them from the project's folder as modules, e.g. `python -m bench.run --quick`.
"""
