"""Layer 3: the architecture search apart from nnU-Net's training loop (architecture step, train/val
split of the fold, optimizers and schedules, per-epoch history and gradient-signal records)."""
