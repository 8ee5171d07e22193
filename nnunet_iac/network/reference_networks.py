"""Small, well-known base networks for self-checks, docs and tests (random weights, no downloads)."""
from __future__ import annotations

from dynamic_network_architectures.architectures.unet import PlainConvUNet, ResidualEncoderUNet
from torch import nn

EXAMPLE_GENOTYPE_DICT = {
    "format": "nnunet-iac-genotype",
    "version": 1,
    "nodes": [
        [{"op": "sep_conv_3x3", "input": 0}, {"op": "sep_conv_3x3", "input": 1}],
        [{"op": "dil_conv_3x3", "input": 0}, {"op": "identity", "input": 2}],
        [{"op": "sep_conv_5x5", "input": 1}, {"op": "avg_pool_3x3", "input": 3}],
        [{"op": "dil_conv_5x5", "input": 2}, {"op": "max_pool_3x3", "input": 4}],
    ],
    "concat": [2, 3, 4, 5],
    "meta": {"note": "hand-written example using every non-zero operation; not a search result"},
}


def _layers(dim: int) -> dict:
    """The conv / norm / nonlin arguments every reference network shares (nnU-Net's 2D or 3D defaults)."""
    if dim not in (2, 3):
        raise ValueError(f"dim must be 2 or 3, got {dim}")
    return {"conv_op": nn.Conv2d if dim == 2 else nn.Conv3d, "conv_bias": True,
            "norm_op": nn.InstanceNorm2d if dim == 2 else nn.InstanceNorm3d,
            "norm_op_kwargs": {"eps": 1e-5, "affine": True}, "nonlin": nn.LeakyReLU, "nonlin_kwargs": {"inplace": True}}


def _hippocampus_unet(dim: int, deep_supervision: bool) -> PlainConvUNet:
    return PlainConvUNet(
        input_channels=1, n_stages=4, features_per_stage=[32, 64, 128, 256],
        kernel_sizes=[[3] * dim] * 4, strides=[[1] * dim] + [[2] * dim] * 3, n_conv_per_stage=[2] * 4,
        num_classes=3, n_conv_per_stage_decoder=[2] * 3, deep_supervision=deep_supervision, **_layers(dim),
    )


def hippocampus_2d_unet(deep_supervision: bool = True) -> PlainConvUNet:
    """The network nnU-Net plans for MSD Task04 Hippocampus, configuration 2d (patch 56x40)."""
    return _hippocampus_unet(2, deep_supervision)


def hippocampus_3d_unet(deep_supervision: bool = True) -> PlainConvUNet:
    """The network nnU-Net plans for MSD Task04 Hippocampus, configuration 3d_fullres (patch 40x56x40)."""
    return _hippocampus_unet(3, deep_supervision)


def _tiny_stages(n_stages: int) -> dict:
    return {"n_stages": n_stages, "features_per_stage": [8 * 2 ** i for i in range(n_stages)], "kernel_sizes": 3,
            "strides": [1] + [2] * (n_stages - 1)}


def tiny_plain_unet(dim: int = 2, deep_supervision: bool = True, n_stages: int = 4) -> PlainConvUNet:
    return PlainConvUNet(input_channels=1, n_conv_per_stage=2, num_classes=3, n_conv_per_stage_decoder=2,
                         deep_supervision=deep_supervision, **_tiny_stages(n_stages), **_layers(dim))


def tiny_resenc_unet(dim: int = 2, deep_supervision: bool = True, n_stages: int = 4) -> ResidualEncoderUNet:
    return ResidualEncoderUNet(input_channels=2, n_blocks_per_stage=1, num_classes=2, n_conv_per_stage_decoder=1,
                               deep_supervision=deep_supervision, **_tiny_stages(n_stages), **_layers(dim))
