"""Issue 13 remedies: cell output init, search schedule, architecture lr, Stage III optimizers, settings."""
import copy
import math

import pytest
import torch

from nnunet_iac.cells.output_init import SMALL_OUTPUT_FRACTION, CellInitError
from nnunet_iac.network.builders import CellOptions, implant_discrete_cells, implant_search_cells
from nnunet_iac.cells.genotype import Genotype
from nnunet_iac.network.implanted_network import ImplantedUNet, cells_signature, implanted_architecture
from nnunet_iac.search.optimizers import ARCH_LR, architecture_optimizer, retrain_optimizer
from nnunet_iac.network.reference_networks import EXAMPLE_GENOTYPE_DICT, tiny_plain_unet
from nnunet_iac.search.schedules import CosineLRScheduler, CosinePowerLRScheduler, search_cell_scheduler
from nnunet_iac.nnunet.settings import IACSettings, SettingsError

GENOTYPE = Genotype.from_dict(EXAMPLE_GENOTYPE_DICT)


def implanted(kind, init, base=None):
    base = copy.deepcopy(base) if base is not None else tiny_plain_unet(deep_supervision=False)
    options = CellOptions(init=init)
    return implant_search_cells(base, options) if kind == "search" else implant_discrete_cells(base, GENOTYPE, options)


def internal_gradients(net):
    """Gradient norms of every cell weight except the output projection and the gate."""
    return {name: float(p.grad.abs().max()) if p.grad is not None else 0.0
            for name, p in net.decoder.iac_cells.named_parameters()
            if "output_projection" not in name and "output_gate" not in name}


@pytest.mark.parametrize("kind", ["search", "discrete"])
@pytest.mark.parametrize("init", ["zero", "gate"])
def test_zero_and_gate_start_exactly_as_the_base(kind, init):
    base = tiny_plain_unet(deep_supervision=False).eval()
    x = torch.randn(2, 1, 32, 32)
    with torch.no_grad():
        assert torch.equal(implanted(kind, init, base).eval()(x), base(x))


@pytest.mark.parametrize("kind", ["search", "discrete"])
def test_small_init_output_is_the_stated_fraction_of_the_normed_states(kind):
    net = implanted(kind, "small").eval()
    seen = []
    for cell in net.decoder.iac_cells:
        cell.output_projection.register_forward_hook(lambda m, args, out: seen.append((args[0], out)))
    with torch.no_grad():
        net(torch.randn(4, 1, 32, 32))
    for states, out in seen:
        ratio = float(out.std() / states.pow(2).mean().sqrt())
        assert 0.5 * SMALL_OUTPUT_FRACTION < ratio < 2 * SMALL_OUTPUT_FRACTION


@pytest.mark.parametrize("kind", ["search", "discrete"])
def test_first_backward_reaches_the_cells_only_without_the_zero_projection(kind):
    """zero: every weight inside the cell gets an exactly-zero gradient; gate: the gate gets one at once;
    small: the weights inside the cell do."""
    x, target = torch.randn(2, 1, 32, 32), torch.randn(2, 3, 32, 32)
    grads = {}
    for init in ("zero", "small", "gate"):
        net = implanted(kind, init)
        ((net(x) - target) ** 2).mean().backward()
        grads[init] = net
    assert all(g == 0 for g in internal_gradients(grads["zero"]).values())
    assert all(cell.output_gate.grad.abs().item() > 0 for cell in grads["gate"].decoder.iac_cells)
    assert any(g > 0 for g in internal_gradients(grads["small"]).values())
    assert all(cell.output_gate is None for cell in grads["small"].decoder.iac_cells)


def test_inits_other_than_zero_are_refused_in_replace_mode():
    with pytest.raises(CellInitError, match="only applies to residual mode"):
        CellOptions(mode="replace", init="gate")
    with pytest.raises(CellInitError, match="Unknown cell init 'big'"):
        CellOptions(init="big")
    with pytest.raises(SettingsError, match="nnUNet_IAC_init='small' only applies to nnUNet_IAC_mode=residual"):
        IACSettings.from_env({"nnUNet_IAC_init": "small", "nnUNet_IAC_mode": "replace"})


def _architecture(options):
    """The plans' architecture entry of a small 2d PlainConvUNet with the example genotype's cells."""
    kwargs = {"n_stages": 4, "features_per_stage": [8, 16, 32, 64], "conv_op": "torch.nn.modules.conv.Conv2d",
              "kernel_sizes": 3, "strides": [1, 2, 2, 2], "n_conv_per_stage": 2, "n_conv_per_stage_decoder": 2,
              "conv_bias": True, "norm_op": "torch.nn.modules.instancenorm.InstanceNorm2d",
              "norm_op_kwargs": {"eps": 1e-5, "affine": True}, "nonlin": "torch.nn.LeakyReLU",
              "nonlin_kwargs": {"inplace": True}}
    return implanted_architecture({"network_class_name": "dynamic_network_architectures.architectures.unet."
                                                         "PlainConvUNet", "arch_kwargs": kwargs,
                                   "_kw_requires_import": ["conv_op", "norm_op", "nonlin"]}, GENOTYPE, options)


def test_init_reaches_the_plans_and_the_network_predict_rebuilds():
    from nnunetv2.utilities.get_network_from_plans import get_network_from_plans

    gated = _architecture(CellOptions(init="gate"))
    assert gated["arch_kwargs"]["iac_cell_options"]["init"] == "gate"
    network = get_network_from_plans(gated["network_class_name"], gated["arch_kwargs"],
                                     gated["_kw_requires_import"], 1, 3, allow_init=True)
    assert isinstance(network, ImplantedUNet)
    assert sum(k.endswith("output_gate") for k in network.state_dict()) == 3
    old = _architecture(CellOptions())
    del old["arch_kwargs"]["iac_cell_options"]["init"]  # plans written before init existed
    rebuilt = get_network_from_plans(old["network_class_name"], old["arch_kwargs"], old["_kw_requires_import"], 1, 3)
    assert not any(k.endswith("output_gate") for k in rebuilt.state_dict())
    assert cells_signature(old) == cells_signature(_architecture(CellOptions(init="zero")))
    assert cells_signature(old) != cells_signature(gated)


def test_settings_refuse_bad_remedy_values_naming_the_variable():
    bad = {"init": "big", "retrain_base": "encoder", "search_schedule": "step", "retrain_base_lr": "-1",
           "arch_lr": "inf", "genotype_epoch": "-2", "retrain_optimizer": "adamw"}
    for name, value in bad.items():
        with pytest.raises(SettingsError, match=f"nnUNet_IAC_{name}"):
            IACSettings.from_env({f"nnUNet_IAC_{name}": value})
    good = IACSettings.from_env({"nnUNet_IAC_init": "gate", "nnUNet_IAC_retrain_base": "decoder",
                                 "nnUNet_IAC_genotype_epoch": "7", "nnUNet_IAC_arch_lr": "3e-3",
                                 "nnUNet_IAC_search_schedule": "cosine_power"})
    assert good.cell_options.init == "gate" and good.genotype_epoch == 7 and good.arch_lr == 3e-3
    assert IACSettings().to_dict()["init"] == "zero" and IACSettings().retrain_base == "frozen"


def test_arch_lr_sets_the_alpha_beta_learning_rate_and_zero_keeps_the_default():
    alpha = [torch.nn.Parameter(torch.ones(3))]
    assert architecture_optimizer(alpha).param_groups[0]["lr"] == ARCH_LR
    assert architecture_optimizer(alpha, 0.0).param_groups[0]["lr"] == ARCH_LR
    assert architecture_optimizer(alpha, 3e-3).param_groups[0]["lr"] == 3e-3


def _lrs(scheduler, optimizer, epochs):
    out = []
    for epoch in epochs:
        scheduler.step(epoch)
        out.append(optimizer.param_groups[0]["lr"])
    return out


def test_cosine_power_annealing_runs_from_initial_to_min_below_cosine():
    epochs = range(0, 11)
    cosine_opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.01)
    power_opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.01)
    cosine = _lrs(CosineLRScheduler(cosine_opt, 0.01, 10), cosine_opt, epochs)
    power = _lrs(search_cell_scheduler("cosine_power", power_opt, 0.01, 10), power_opt, epochs)
    assert power[0] == pytest.approx(0.01) and power[-1] == pytest.approx(0.0, abs=1e-12)
    assert all(p < c for p, c in zip(power[1:-1], cosine[1:-1]))
    # halfway the cosine shape is 1/2, so cosine power (base 10) gives (sqrt(10) - 1) / 9 of the initial lr
    assert power[5] == pytest.approx(0.01 * (math.sqrt(10) - 1) / 9)
    assert all(a > b for a, b in zip(power, power[1:]))
    with pytest.raises(ValueError, match="base > 1"):
        CosinePowerLRScheduler(power_opt, 0.01, 10, base=1.0)
    with pytest.raises(ValueError, match="Unknown search schedule 'step'"):
        search_cell_scheduler("step", power_opt, 0.01, 10)


def test_adam_constant_is_plain_adam_at_a_constant_1e3():
    weights = [torch.nn.Parameter(torch.zeros(3))]
    optimizer, schedule = retrain_optimizer("adam_constant", weights, 0.01, 3e-5, epochs=4)
    assert type(optimizer) is torch.optim.Adam
    group = optimizer.param_groups[0]
    assert group["weight_decay"] == 0 and group["amsgrad"] is False
    assert _lrs(schedule, optimizer, range(4)) == [1e-3] * 4
    adamw, poly = retrain_optimizer("adam", weights, 0.01, 3e-5, epochs=4)
    assert _lrs(poly, adamw, [2])[0] == pytest.approx(1e-3 * 0.5 ** 0.9)


def test_plans_written_before_the_subpackages_still_rebuild_and_count_as_implanted():
    """Model folders retrained before issue 15 name ``nnunet_iac.implanted_network.ImplantedUNet`` in plans.json;
    nnU-Net's predictor imports whatever is named there, so that path must keep rebuilding the same network."""
    from nnunetv2.utilities.get_network_from_plans import get_network_from_plans

    from nnunet_iac.network.implanted_network import LEGACY_CLASS_PATHS, base_architecture_of, is_implanted

    old = _architecture(CellOptions())
    old["network_class_name"] = LEGACY_CLASS_PATHS[0]
    options = old["arch_kwargs"]["iac_cell_options"]
    options["partial_k"] = options.pop("k")  # K's name in plans before it had one name everywhere
    torch.manual_seed(0)
    rebuilt = get_network_from_plans(old["network_class_name"], old["arch_kwargs"], old["_kw_requires_import"], 1, 3)
    assert isinstance(rebuilt, ImplantedUNet)
    current = _architecture(CellOptions())
    assert rebuilt.state_dict().keys() == get_network_from_plans(
        current["network_class_name"], current["arch_kwargs"], current["_kw_requires_import"], 1, 3).state_dict().keys()
    assert is_implanted(old) and base_architecture_of(old) == base_architecture_of(current)
    assert cells_signature(old) == cells_signature(current)
