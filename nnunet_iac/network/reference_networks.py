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


def _ops(dim: int):
    if dim == 2:
        return nn.Conv2d, nn.InstanceNorm2d
    if dim == 3:
        return nn.Conv3d, nn.InstanceNorm3d
    raise ValueError(f"dim must be 2 or 3, got {dim}")


def _hippocampus_unet(dim: int, deep_supervision: bool) -> PlainConvUNet:
    conv_op, norm_op = _ops(dim)
    return PlainConvUNet(
        input_channels=1, n_stages=4, features_per_stage=[32, 64, 128, 256], conv_op=conv_op,
        kernel_sizes=[[3] * dim] * 4, strides=[[1] * dim] + [[2] * dim] * 3, n_conv_per_stage=[2] * 4,
        num_classes=3, n_conv_per_stage_decoder=[2] * 3, conv_bias=True, norm_op=norm_op,
        norm_op_kwargs={"eps": 1e-5, "affine": True}, nonlin=nn.LeakyReLU, nonlin_kwargs={"inplace": True},
        deep_supervision=deep_supervision,
    )


def hippocampus_2d_unet(deep_supervision: bool = True) -> PlainConvUNet:
    """The network nnU-Net plans for MSD Task04 Hippocampus, configuration 2d (patch 56x40)."""
    return _hippocampus_unet(2, deep_supervision)


def hippocampus_3d_unet(deep_supervision: bool = True) -> PlainConvUNet:
    """The network nnU-Net plans for MSD Task04 Hippocampus, configuration 3d_fullres (patch 40x56x40)."""
    return _hippocampus_unet(3, deep_supervision)


def tiny_plain_unet(dim: int = 2, deep_supervision: bool = True, n_stages: int = 4) -> PlainConvUNet:
    conv_op, norm_op = _ops(dim)
    return PlainConvUNet(
        input_channels=1, n_stages=n_stages, features_per_stage=[8 * 2 ** i for i in range(n_stages)],
        conv_op=conv_op, kernel_sizes=3, strides=[1] + [2] * (n_stages - 1), n_conv_per_stage=2,
        num_classes=3, n_conv_per_stage_decoder=2, conv_bias=True, norm_op=norm_op,
        norm_op_kwargs={"eps": 1e-5, "affine": True}, nonlin=nn.LeakyReLU, nonlin_kwargs={"inplace": True},
        deep_supervision=deep_supervision,
    )


def tiny_resenc_unet(dim: int = 2, deep_supervision: bool = True, n_stages: int = 4) -> ResidualEncoderUNet:
    conv_op, norm_op = _ops(dim)
    return ResidualEncoderUNet(
        input_channels=2, n_stages=n_stages, features_per_stage=[8 * 2 ** i for i in range(n_stages)],
        conv_op=conv_op, kernel_sizes=3, strides=[1] + [2] * (n_stages - 1), n_blocks_per_stage=1,
        num_classes=2, n_conv_per_stage_decoder=1, conv_bias=True, norm_op=norm_op,
        norm_op_kwargs={"eps": 1e-5, "affine": True}, nonlin=nn.LeakyReLU, nonlin_kwargs={"inplace": True},
        deep_supervision=deep_supervision,
    )
