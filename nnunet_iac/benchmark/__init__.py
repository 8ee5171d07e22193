"""``nnunet-iac benchmark``: does IAC help on this dataset? Base, IAC, random genotypes and controls at equal
batch, patch and extra-batch budget, through nnU-Net's own commands, with paired statistics (issues 5, 13, 14).

A layer above ``selection`` and below ``tools`` (the CLI). Its nnU-Net trainers (base, controls, the paper
recipe) are in the trainer package's ``benchmarking`` folder, where nnU-Net finds them through
``nnUNet_extTrainer``. docs/benchmarks.md describes what runs and what it reports.
"""
