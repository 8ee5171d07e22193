"""The parts a parameter-efficient control trains (issue 36): found by module type and encoder names, in 2D and
3D, plain and residual encoders, and a real optimizer step moves exactly them."""
import pytest
import torch
from torch import nn

from nnunet_iac.network.reference_networks import tiny_plain_unet, tiny_resenc_unet
from nnunet_iac.network.trainable_parts import (ALL, DECODER, FIRST_STAGE, NORM, TrainablePartError,
                                                part_parameter_names, train_only)

NETWORKS = [(tiny_plain_unet, 2), (tiny_plain_unet, 3), (tiny_resenc_unet, 2)]


def _channels(network: nn.Module) -> int:
    """Input channels of the network's first convolution."""
    return next(m for m in network.modules() if isinstance(m, (nn.Conv2d, nn.Conv3d))).in_channels


def _moved_by_a_step(network: nn.Module, dim: int) -> set[str]:
    """Names of the parameters one SGD step on a random batch changes."""
    before = {name: p.detach().clone() for name, p in network.named_parameters()}
    optimizer = torch.optim.SGD([p for p in network.parameters() if p.requires_grad], lr=0.1)
    x = torch.randn(2, _channels(network), *([16] * dim))
    output = network(x)
    output = output[0] if isinstance(output, (list, tuple)) else output
    output.square().mean().backward()
    optimizer.step()
    return {name for name, p in network.named_parameters() if not torch.equal(before[name], p.detach())}


@pytest.mark.parametrize("build, dim", NETWORKS)
def test_each_part_is_what_its_name_says_and_a_step_moves_only_it(build, dim):
    network = build(dim)
    names = {name for name, _ in network.named_parameters()}
    encoder = {name for name in names if name.startswith("encoder.")}
    assert part_parameter_names(network, ALL) == names
    assert part_parameter_names(network, DECODER) == names - encoder
    norm = part_parameter_names(network, NORM)
    modules = dict(network.named_modules())
    norm_weights = {f"{m}.weight" for m, module in modules.items()
                    if isinstance(module, (nn.InstanceNorm2d, nn.InstanceNorm3d, nn.BatchNorm2d, nn.BatchNorm3d))
                    and getattr(module, "weight", None) is not None}
    assert norm_weights and norm_weights <= norm
    assert all(n in norm_weights or n.endswith(".bias") for n in norm)
    assert not any(isinstance(modules[n.rsplit(".", 1)[0]], (nn.Conv2d, nn.Conv3d)) and n.endswith(".weight")
                   for n in norm)
    first = part_parameter_names(network, FIRST_STAGE)
    assert first and all(n.startswith(("encoder.stages.0.", "encoder.stem.")) for n in first)
    for part in (DECODER, NORM, FIRST_STAGE):
        fresh = build(dim)
        trained, frozen = train_only(fresh, part)
        chosen = part_parameter_names(fresh, part)
        assert trained == sum(p.numel() for n, p in fresh.named_parameters() if n in chosen) and frozen > 0
        moved = _moved_by_a_step(fresh, dim)
        assert moved and moved <= chosen, f"{part}: moved outside the part: {sorted(moved - chosen)[:3]}"


def test_an_unknown_part_or_a_network_without_an_encoder_is_refused():
    with pytest.raises(TrainablePartError, match="Unknown part 'heads'"):
        part_parameter_names(tiny_plain_unet(2), "heads")
    with pytest.raises(TrainablePartError, match="no encoder.stages"):
        part_parameter_names(nn.Sequential(nn.Conv2d(1, 2, 3)), FIRST_STAGE)
