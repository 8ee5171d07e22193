"""Development benchmarks: ``python -m benchmarks.iteration_cost``; ``python -m benchmarks.run_benchmark`` and
``python -m benchmarks.paired_statistics`` are aliases of ``nnunet-iac benchmark`` / ``benchmark-stats``
(the benchmark itself is installed with the package: nnunet_iac/benchmark)."""
