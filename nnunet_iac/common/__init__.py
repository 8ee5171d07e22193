"""Layer 0: helpers with no knowledge of cells or nnU-Net (atomic file writes, per-epoch seeding)."""
