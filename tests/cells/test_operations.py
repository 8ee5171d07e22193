import pytest
import torch
from torch import nn

from nnunet_iac.cells import operations
from nnunet_iac.network.builders import implant_search_cells
from nnunet_iac.cells.layer_spec import LayerSpec
from nnunet_iac.cells.operations import OPERATIONS, build_operation, search_space
from nnunet_iac.network.reference_networks import tiny_plain_unet


def spec(dim):
    conv, norm = (nn.Conv2d, nn.InstanceNorm2d) if dim == 2 else (nn.Conv3d, nn.InstanceNorm3d)
    return LayerSpec(conv, norm, {"eps": 1e-5, "affine": True}, nn.LeakyReLU, {"inplace": True})


def test_search_space_is_the_papers_eight_operations():
    assert set(search_space()) == {"zero", "identity", "max_pool_3x3", "avg_pool_3x3", "sep_conv_3x3",
                                   "sep_conv_5x5", "dil_conv_3x3", "dil_conv_5x5"}


@pytest.mark.parametrize("dim", [2, 3])
@pytest.mark.parametrize("name", list(OPERATIONS))
def test_every_operation_keeps_shape_in_2d_and_3d(dim, name):
    x = torch.randn(2, 8, *([9] * dim))
    y = build_operation(name, spec(dim), 8)(x)
    assert y.shape == x.shape


@pytest.mark.parametrize("dim", [2, 3])
def test_operations_use_the_base_networks_layers(dim):
    op = build_operation("sep_conv_3x3", spec(dim), 8)
    convs = [m for m in op.modules() if isinstance(m, nn.Conv2d if dim == 2 else nn.Conv3d)]
    norms = [m for m in op.modules() if isinstance(m, nn.InstanceNorm2d if dim == 2 else nn.InstanceNorm3d)]
    assert len(convs) == 4 and len(norms) == 2
    assert all(isinstance(m, nn.LeakyReLU) and not m.inplace for m in op.modules() if isinstance(m, nn.LeakyReLU))


def test_spec_is_read_from_the_network():
    net = tiny_plain_unet(dim=3)
    s = LayerSpec.from_encoder(net.encoder)
    assert s.conv_op is nn.Conv3d and s.norm_op is nn.InstanceNorm3d and s.spatial_dims == 3


def test_unknown_operation_is_a_clear_error():
    with pytest.raises(KeyError, match="Unknown cell operation 'conv_7x7'"):
        build_operation("conv_7x7", spec(2), 8)


def test_adding_an_operation_is_one_registry_entry(monkeypatch):
    monkeypatch.setitem(operations.OPERATIONS, "conv_1x1", lambda s, c, e: s.conv(c * e, c * e, 1, groups=e))
    assert "conv_1x1" in search_space()
    net = implant_search_cells(tiny_plain_unet())
    assert net.decoder.iac_architecture.alpha.shape[1] == len(OPERATIONS)
    assert net(torch.randn(1, 1, 32, 32))[0].shape == (1, 3, 32, 32)


@pytest.mark.parametrize("dim", [2, 3])
@pytest.mark.parametrize("kernel_size,dilation", [(3, 1), (5, 1), (5, 2)])
def test_depthwise_conv_computes_what_the_base_conv_computes(dim, kernel_size, dilation):
    fast = LayerSpec(nn.Conv2d if dim == 2 else nn.Conv3d).depthwise_conv(6, kernel_size, dilation)
    plain = (nn.Conv2d if dim == 2 else nn.Conv3d)(6, 6, kernel_size, padding=dilation * (kernel_size - 1) // 2,
                                                  dilation=dilation, groups=6, bias=False)
    assert isinstance(fast, type(plain)) and type(fast) is not type(plain)
    plain.load_state_dict(fast.state_dict())
    x = torch.randn(2, 6, *([11] * dim), requires_grad=True)
    grad = torch.randn(2, 6, *([11] * dim))
    y_fast = fast(x)
    assert y_fast.is_contiguous()
    dx_fast, fast_weight_grad = torch.autograd.grad(y_fast, (x, fast.weight), grad)
    y_plain = plain(x)
    dx_plain, plain_weight_grad = torch.autograd.grad(y_plain, (x, plain.weight), grad)
    torch.testing.assert_close(y_fast, y_plain, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(dx_fast, dx_plain, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(fast_weight_grad, plain_weight_grad, rtol=1e-4, atol=1e-4)
    with torch.no_grad():
        torch.testing.assert_close(fast(x), y_plain, rtol=1e-4, atol=1e-5)


def test_separable_conv_keeps_its_state_dict_keys():
    op = build_operation("sep_conv_5x5", spec(2), 8)
    assert list(op.state_dict()) == ["1.weight", "2.weight", "3.weight", "3.bias", "5.weight", "6.weight",
                                     "7.weight", "7.bias"]


@pytest.mark.parametrize("dim", [2, 3])
@pytest.mark.parametrize("affine", [True, False])
def test_cell_norm_computes_what_instance_norm_computes(dim, affine):
    instance_norm = nn.InstanceNorm2d if dim == 2 else nn.InstanceNorm3d
    fast = LayerSpec(nn.Conv2d if dim == 2 else nn.Conv3d, instance_norm, {"eps": 1e-5, "affine": affine}).norm(6)
    plain = instance_norm(6, eps=1e-5, affine=affine)
    assert isinstance(fast, instance_norm) and type(fast) is not instance_norm
    if affine:
        with torch.no_grad():
            fast.weight.uniform_(0.5, 1.5)
            fast.bias.uniform_(-0.5, 0.5)
    plain.load_state_dict(fast.state_dict())
    assert list(fast.state_dict()) == list(plain.state_dict())
    x = torch.randn(3, 6, *([7] * dim), requires_grad=True)
    grad = torch.randn(3, 6, *([7] * dim))
    y_fast, y_plain = fast(x), plain(x)
    torch.testing.assert_close(y_fast, y_plain, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(torch.autograd.grad(y_fast, x, grad)[0], torch.autograd.grad(y_plain, x, grad)[0],
                               rtol=1e-4, atol=1e-4)


def test_cell_norm_with_running_statistics_keeps_instance_norms_own_forward():
    fast = LayerSpec(nn.Conv2d, nn.InstanceNorm2d, {"affine": True, "track_running_stats": True}).norm(4)
    plain = nn.InstanceNorm2d(4, affine=True, track_running_stats=True)
    x = torch.randn(2, 4, 5, 5) * 3 + 1
    fast(x), plain(x)
    fast.eval(), plain.eval()
    torch.testing.assert_close(fast(x), plain(x))
    torch.testing.assert_close(fast.running_mean, plain.running_mean)
