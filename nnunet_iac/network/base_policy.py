"""Which base weights Stage III trains besides the cells (``nnUNet_IAC_retrain_base``).

- ``frozen`` (default, the paper's Stage III): only the cells learn; the base is bit-identical afterwards.
- ``decoder``: the decoder's own modules (upsampling ``transpconvs``, conv ``stages``, ``seg_layers``)
  learn too, the encoder stays frozen. The cells sit in the skip connections and feed the decoder, so a
  decoder that may adapt to them is the smallest unfreezing that lets base and cells co-adapt.
- ``all``: the whole base is fine-tuned with the cells. Fine-tuning the base alone gave +0.5 to +1.1 Dice
  points on Hippocampus where frozen-base cells gave nothing (docs/benchmarks.md); a user who can afford
  to unfreeze should get at least that, plus whatever the cells add.

Unfrozen base modules are in train mode while training (norm statistics, dropout), like nnU-Net's own
fine-tuning; frozen ones stay in eval mode. They form a second optimizer parameter group at
``nnUNet_IAC_retrain_base_lr`` (``optimizers.retrain_optimizer``).
"""
from __future__ import annotations

from torch import nn

from nnunet_iac.network.implant import implanted_decoder

RETRAIN_BASE_POLICIES = ("frozen", "decoder", "all")
ENCODER_CHILD = "encoder"


def trainable_base_children(network: nn.Module, policy: str) -> tuple[str, ...]:
    """Names of the implanted decoder's base children that ``policy`` leaves trainable (see ``freeze_base``)."""
    if policy not in RETRAIN_BASE_POLICIES:
        raise ValueError(f"Unknown retrain base policy {policy!r}; use one of {', '.join(RETRAIN_BASE_POLICIES)}.")
    if policy == "frozen":
        return ()
    names = tuple(name for name, _ in implanted_decoder(network).named_base_children())
    return names if policy == "all" else tuple(name for name in names if name != ENCODER_CHILD)
