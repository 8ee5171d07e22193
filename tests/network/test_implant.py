import copy

import pytest
import torch
from torch import nn

from nnunet_iac.network.builders import CellOptions, implant_discrete_cells, implant_search_cells
from nnunet_iac.cells.genotype import Genotype
from nnunet_iac.network.implant import (ImplantError, architecture_parameters, base_parameters, cell_parameters,
                                freeze_base, is_base_key)
from nnunet_iac.network.reference_networks import EXAMPLE_GENOTYPE_DICT, tiny_plain_unet, tiny_resenc_unet

GENOTYPE = Genotype.from_dict(EXAMPLE_GENOTYPE_DICT)
NETWORKS = {"plain": tiny_plain_unet, "resenc": tiny_resenc_unet}


INPUT_CHANNELS = {"plain": 1, "resenc": 2}


def outputs(net, x):
    out = net(x)
    return out if isinstance(out, (list, tuple)) else [out]


def implant(kind, net, mode="residual"):
    options = CellOptions(mode=mode)
    return implant_search_cells(net, options) if kind == "search" else implant_discrete_cells(net, GENOTYPE, options)


@pytest.mark.parametrize("arch", list(NETWORKS))
@pytest.mark.parametrize("dim", [2, 3])
@pytest.mark.parametrize("deep_supervision", [True, False])
@pytest.mark.parametrize("kind", ["search", "discrete"])
def test_residual_implant_preserves_the_base_function(arch, dim, deep_supervision, kind):
    base = NETWORKS[arch](dim=dim, deep_supervision=deep_supervision).eval()
    x = torch.randn(2, INPUT_CHANNELS[arch], *([16 if dim == 3 else 32] * dim))
    with torch.no_grad():
        reference = outputs(base, x)
        implanted = implant(kind, copy.deepcopy(base)).eval()
        got = outputs(implanted, x)
    assert len(got) == len(reference)
    for r, g in zip(reference, got):
        assert r.shape == g.shape
        assert (r - g).abs().max() <= 1e-5


@pytest.mark.parametrize("dim", [2, 3])
@pytest.mark.parametrize("kind", ["search", "discrete"])
def test_cells_see_every_level_with_the_right_shapes(dim, kind):
    base = tiny_plain_unet(dim=dim)
    net = implant(kind, base, mode="replace")
    seen = []
    for cell in net.decoder.iac_cells:
        cell.register_forward_hook(lambda m, args, out: seen.append((args[0].shape, args[1].shape, out.shape)))
    size = 16 if dim == 3 else 32
    net(torch.randn(2, 1, *([size] * dim)))
    channels = base.encoder.output_channels
    assert len(seen) == len(channels) - 1
    for s, (skip, up, out) in enumerate(seen):
        c = channels[-(s + 2)]
        spatial = (size // 2 ** (len(channels) - 2 - s),) * dim
        assert skip == up == (2, c, *spatial)
        assert out == (2, 2 * c, *spatial)


def test_replace_mode_changes_the_output_and_residual_does_not():
    base = tiny_plain_unet().eval()
    x = torch.randn(1, 1, 32, 32)
    with torch.no_grad():
        ref = base(x)[0]
        replaced = implant_search_cells(copy.deepcopy(base), CellOptions(mode="replace")).eval()(x)[0]
    assert replaced.shape == ref.shape
    assert (replaced - ref).abs().max() > 1e-3


def test_existing_state_dict_keys_are_unchanged_and_a_base_checkpoint_loads():
    base = tiny_plain_unet()
    net = implant_search_cells(copy.deepcopy(base))
    keys = set(net.state_dict())
    assert set(base.state_dict()) <= keys
    assert all(not is_base_key(k) for k in keys - set(base.state_dict()))
    result = net.load_state_dict(base.state_dict(), strict=False)
    assert not result.unexpected_keys
    assert all(not is_base_key(k) for k in result.missing_keys)


def test_deep_supervision_toggle_still_works():
    net = implant_discrete_cells(tiny_plain_unet(deep_supervision=True), GENOTYPE)
    x = torch.randn(1, 1, 32, 32)
    assert isinstance(net(x), list) and len(net(x)) == 3
    net.decoder.deep_supervision = False
    out = net(x)
    assert torch.is_tensor(out) and out.shape == (1, 3, 32, 32)


def test_feature_map_size_counts_the_cells():
    base = tiny_plain_unet()
    discrete = implant_discrete_cells(copy.deepcopy(base), GENOTYPE)
    search = implant_search_cells(copy.deepcopy(base))
    sizes = [n.compute_conv_feature_map_size((32, 32)) for n in (base, discrete, search)]
    assert sizes[0] < sizes[1] < sizes[2]


def test_unsupported_and_double_implant_are_refused():
    with pytest.raises(ImplantError, match="UNetDecoder"):
        implant_search_cells(nn.Sequential(nn.Conv2d(1, 1, 1)))
    net = implant_search_cells(tiny_plain_unet())
    with pytest.raises(ImplantError, match="already"):
        implant_search_cells(net)


def _train_steps(net, steps=3, lr=0.1):
    opt = torch.optim.SGD(net.parameters(), lr=lr, momentum=0.9, weight_decay=1e-2)
    arch_opt = torch.optim.Adam(architecture_parameters(net) or [torch.zeros(1, requires_grad=True)], lr=0.05)
    x = torch.randn(2, 1, 32, 32)
    target = torch.randint(0, 3, (2, 32, 32))
    net.train()
    for _ in range(steps):
        opt.zero_grad(), arch_opt.zero_grad()
        torch.nn.functional.cross_entropy(net(x)[0], target).backward()
        opt.step(), arch_opt.step()


@pytest.mark.parametrize("mode", ["residual", "replace"])
def test_base_stays_bit_identical_while_cells_learn(mode):
    net = freeze_base(implant_search_cells(tiny_plain_unet(), CellOptions(mode=mode)))
    before = copy.deepcopy(net.state_dict())
    _train_steps(net)
    after = net.state_dict()
    for key, value in before.items():
        if is_base_key(key):
            assert torch.equal(value, after[key]), key
    changed = [k for k in before if not is_base_key(k) and not torch.equal(before[k], after[k])]
    assert any(".iac_cells." in k for k in changed)
    assert any("iac_architecture.alpha" in k for k in changed)
    assert any("iac_architecture.beta" in k for k in changed)


def test_frozen_batchnorm_base_keeps_its_statistics():
    from dynamic_network_architectures.architectures.unet import PlainConvUNet
    base = PlainConvUNet(1, 3, [8, 16, 32], nn.Conv2d, 3, [1, 2, 2], 2, 3, 2, True, nn.BatchNorm2d, {},
                         None, None, nn.ReLU, {}, deep_supervision=True)
    net = freeze_base(implant_discrete_cells(base, GENOTYPE))
    before = copy.deepcopy(net.state_dict())
    _train_steps(net, steps=2)
    for key, value in before.items():
        if is_base_key(key):
            assert torch.equal(value, net.state_dict()[key]), key


@pytest.mark.parametrize("mode", ["residual", "replace"])
def test_gradients_reach_alpha_beta_and_cells_but_not_the_base(mode):
    net = freeze_base(implant_search_cells(tiny_plain_unet(), CellOptions(mode=mode)))
    if mode == "residual":
        # the zero-initialised projection passes no gradient inward until it has moved once
        _train_steps(net, steps=1)
    net.zero_grad()
    x = torch.randn(2, 1, 32, 32)
    torch.nn.functional.cross_entropy(net(x)[0], torch.randint(0, 3, (2, 32, 32))).backward()
    arch = net.decoder.iac_architecture
    assert arch.alpha.grad is not None and arch.alpha.grad.abs().sum() > 0
    assert arch.beta.grad is not None and arch.beta.grad.abs().sum() > 0
    for cell in net.decoder.iac_cells:
        assert cell.reduce_skip[1].weight.grad.abs().sum() > 0
        assert cell.sources[0].ops[4][1].weight.grad.abs().sum() > 0
    assert all(p.grad is None and not p.requires_grad for p in base_parameters(net))
    assert {id(p) for p in cell_parameters(net)}.isdisjoint({id(p) for p in architecture_parameters(net)})


def test_architecture_is_shared_by_all_levels_but_weights_are_not():
    net = implant_search_cells(tiny_plain_unet())
    assert sum(1 for name, _ in net.named_parameters() if name.endswith("alpha")) == 1
    cells = net.decoder.iac_cells
    assert cells[0].reduce_skip[1].weight.shape != cells[1].reduce_skip[1].weight.shape
    assert cells[1].sources[0].ops[4][1].weight.data_ptr() != cells[2].sources[0].ops[4][1].weight.data_ptr()
