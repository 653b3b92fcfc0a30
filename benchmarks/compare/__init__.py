"""oipserve side by side with MLServer 1.7.1 and bare-stack floors (python -m benchmarks.compare).

See ``benchmarks/compare/run.py`` for what is measured and how.
"""
