"""The IAC benchmark (issue 5): base vs fine-tuned control vs IAC at equal batch and patch size.

Entry point: ``python -m benchmarks.run_benchmark`` (or ``python benchmarks/run_benchmark.py``);
see docs/benchmarks.md.
"""
