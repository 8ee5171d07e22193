"""The building blocks a cell may use, taken from the base network it is implanted into.

Cells are built from the base's own convolution, normalization and nonlinearity so that a 3d_fullres
model gets 3D cells and every cell normalizes its features the way the frozen base around it does.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Type

from dynamic_network_architectures.building_blocks.helper import (
    convert_conv_op_to_dim,
    get_matching_pool_op,
)
from torch import nn

from nnunet_iac.cells.channel_norm import channel_norm_op
from nnunet_iac.cells.depthwise_conv import depthwise_conv_op


@dataclass(frozen=True)
class LayerSpec:
    conv_op: Type[nn.Module]
    norm_op: Type[nn.Module] | None = None
    norm_op_kwargs: dict[str, Any] = field(default_factory=dict)
    nonlin: Type[nn.Module] | None = None
    nonlin_kwargs: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_encoder(cls, encoder: nn.Module) -> "LayerSpec":
        """Read the spec off a dynamic-network-architectures encoder (PlainConvEncoder, ResidualEncoder)."""
        return cls(
            conv_op=encoder.conv_op,
            norm_op=encoder.norm_op,
            norm_op_kwargs=dict(encoder.norm_op_kwargs or {}),
            nonlin=encoder.nonlin,
            nonlin_kwargs=dict(encoder.nonlin_kwargs or {}),
        )

    @property
    def spatial_dims(self) -> int:
        return convert_conv_op_to_dim(self.conv_op)

    def conv(self, in_channels: int, out_channels: int, kernel_size: int = 1, dilation: int = 1,
             groups: int = 1, bias: bool = False, conv_op: type[nn.Module] | None = None) -> nn.Module:
        """A stride-1 convolution whose padding keeps the spatial size (``conv_op``: a subclass of the base's)."""
        padding = dilation * (kernel_size - 1) // 2
        return (conv_op or self.conv_op)(in_channels, out_channels, kernel_size, stride=1, padding=padding,
                                         dilation=dilation, groups=groups, bias=bias)

    def depthwise_conv(self, channels: int, kernel_size: int, dilation: int = 1) -> nn.Module:
        """A size-keeping depthwise convolution of ``channels`` channels (fast CPU backward, see depthwise_conv)."""
        return self.conv(channels, channels, kernel_size, dilation, groups=channels,
                         conv_op=depthwise_conv_op(self.conv_op))

    def norm(self, channels: int) -> nn.Module:
        if self.norm_op is None:
            return nn.Identity()
        return channel_norm_op(self.norm_op)(channels, **self.norm_op_kwargs)

    def activation(self) -> nn.Module:
        """Never in-place: a cell feeds one node's features to several edges."""
        if self.nonlin is None:
            return nn.Identity()
        kwargs = {k: v for k, v in self.nonlin_kwargs.items() if k != "inplace"}
        return self.nonlin(**kwargs)

    def pool(self, kind: str, kernel_size: int = 3) -> nn.Module:
        pool_op = get_matching_pool_op(conv_op=self.conv_op, pool_type=kind)
        if kind == "avg":
            return pool_op(kernel_size, stride=1, padding=kernel_size // 2, count_include_pad=False)
        return pool_op(kernel_size, stride=1, padding=kernel_size // 2)
