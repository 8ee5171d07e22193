"""Layer 5: what users run besides nnU-Net's commands (the CLI, demo, self-check, summary, plots, the
synthetic dataset of the demo and tests)."""
