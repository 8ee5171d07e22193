"""Layer 2: cells in a base U-Net (implanting into the decoder's skip connections, freezing, the implanted
network nnU-Net's predictor rebuilds from plans, parameter counts). Imports ``cells`` and ``common``."""
