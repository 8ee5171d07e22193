import json
import math

import pytest
import torch

from nnunet_iac.nnunet.base_model import (BaseModelError, check_base_matches, load_base_weights,
                                   resolve_base_checkpoint)
from nnunet_iac.network.builders import implant_search_cells
from nnunet_iac.cells.genotype import Genotype
from nnunet_iac.network.reference_networks import EXAMPLE_GENOTYPE_DICT, tiny_plain_unet
from nnunet_iac.search.schedules import CosineLRScheduler
from nnunet_iac.search.history import EpochRecord, SearchHistory, alpha_entropy, parameter_free_ops
from nnunet_iac.search.split import SearchSplitError, load_or_create_split, split_search_cases
from nnunet_iac.nnunet.settings import IACSettings, SettingsError


def test_settings_read_from_environment_and_validated():
    s = IACSettings.from_env({"nnUNet_IAC_epochs": "7", "nnUNet_IAC_mode": "replace", "nnUNet_IAC_k": "2"})
    assert (s.epochs, s.mode, s.k, s.warmup_epochs) == (7, "replace", 2, 15)
    assert s.cell_options.k == 2
    with pytest.raises(SettingsError, match="nnUNet_IAC_epochs='many' is not an integer"):
        IACSettings.from_env({"nnUNet_IAC_epochs": "many"})
    with pytest.raises(SettingsError, match="nnUNet_IAC_mode='add'"):
        IACSettings.from_env({"nnUNet_IAC_mode": "add"})
    with pytest.raises(SettingsError, match="nnUNet_IAC_iterations_per_epoch=0 must be >= 1"):
        IACSettings.from_env({"nnUNet_IAC_iterations_per_epoch": "0"})


def test_split_is_deterministic_disjoint_and_complete():
    keys = [f"case_{i}" for i in range(11)]
    a, b = split_search_cases(keys, 1), split_search_cases(list(reversed(keys)), 1)
    assert a == b
    assert sorted(a["train_search"] + a["val_search"]) == sorted(keys)
    assert len(a["train_search"]) == 5 and len(a["val_search"]) == 6
    assert split_search_cases(keys, 2) != a
    with pytest.raises(SearchSplitError, match="at least 2"):
        split_search_cases(["only"], 0)


def test_saved_split_is_reused_and_checked(tmp_path):
    keys = [f"c{i}" for i in range(6)]
    first = load_or_create_split(tmp_path, keys, 0, 0)
    assert load_or_create_split(tmp_path, keys, 99, 0) == first
    with pytest.raises(SearchSplitError, match="other cases"):
        load_or_create_split(tmp_path, keys + ["c6"], 0, 0)


def _record(epoch, phase, genotype):
    return EpochRecord(epoch, phase, genotype, [[0.125] * 8], [1.0], 0.1, float("nan"), 0.2, 1.0, 0, 2.0)


def test_stable_epochs_counts_unchanged_search_genotypes():
    g1 = Genotype.from_dict(EXAMPLE_GENOTYPE_DICT).to_dict()
    g2 = json.loads(json.dumps(g1))
    g2["nodes"][0][0]["op"] = "identity"
    history = SearchHistory([_record(0, "warmup", g1), _record(1, "search", g2), _record(2, "search", g1),
                             _record(3, "search", g1), _record(4, "search", g1)])
    assert history.stable_epochs() == 2
    history.append(_record(5, "search", g2))
    assert history.stable_epochs() == 0
    restored = SearchHistory.from_list(json.loads(json.dumps(history.to_list())))
    assert len(restored.records) == 6 and math.isnan(restored.records[0].arch_loss)


def test_collapse_indicators():
    assert alpha_entropy(torch.full((14, 8), 1 / 8)) == pytest.approx(math.log(8))
    assert alpha_entropy(torch.eye(8)[:1]) == pytest.approx(0.0, abs=1e-6)
    assert parameter_free_ops(Genotype.from_dict(EXAMPLE_GENOTYPE_DICT)) == 3


def test_cosine_schedule_goes_from_initial_to_min():
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.01)
    sched = CosineLRScheduler(opt, 0.01, 10)
    sched.step(0)
    assert opt.param_groups[0]["lr"] == pytest.approx(0.01)
    sched.step(5)
    assert opt.param_groups[0]["lr"] == pytest.approx(0.005)
    sched.step(10)
    assert opt.param_groups[0]["lr"] == pytest.approx(0.0)


def test_base_resolution_from_override_and_default(tmp_path):
    trainer_folder = tmp_path / "nnUNetTrainer_250epochs__nnUNetPlans__2d"
    (trainer_folder / "fold_2").mkdir(parents=True)
    ckpt = trainer_folder / "fold_2" / "checkpoint_final.pth"
    ckpt.write_bytes(b"x")
    assert resolve_base_checkpoint(tmp_path / "default", 2, str(trainer_folder)) == ckpt
    assert resolve_base_checkpoint(tmp_path / "default", 2, str(trainer_folder / "fold_2")) == ckpt
    assert resolve_base_checkpoint(tmp_path / "default", 2, str(ckpt)) == ckpt
    assert resolve_base_checkpoint(trainer_folder, 2) == ckpt
    with pytest.raises(BaseModelError, match=r"fold_3/checkpoint_final.pth.*nnUNet_IAC_base"):
        resolve_base_checkpoint(trainer_folder, 3)


def _plans(features):
    return {"plans_name": "nnUNetPlans", "configurations": {"2d": {"architecture": {
        "network_class_name": "PlainConvUNet", "arch_kwargs": {"features_per_stage": features}}}}}


def test_base_trained_on_other_plans_or_configuration_is_refused(tmp_path):
    path = tmp_path / "checkpoint_final.pth"
    ok = {"init_args": {"plans": _plans([8, 16]), "configuration": "2d"}}
    check_base_matches(ok, path, _plans([8, 16]), "2d")
    with pytest.raises(BaseModelError, match="configuration '2d', not '3d_fullres'"):
        check_base_matches(ok, path, _plans([8, 16]), "3d_fullres")
    with pytest.raises(BaseModelError, match="features_per_stage differ"):
        check_base_matches(ok, path, _plans([8, 32]), "2d")


def test_base_weights_load_strictly(tmp_path):
    base = tiny_plain_unet()
    net = implant_search_cells(tiny_plain_unet())
    load_base_weights(net, {f"module.{k}": v for k, v in base.state_dict().items()}, tmp_path / "ckpt.pth")
    for key, value in base.state_dict().items():
        assert torch.equal(net.state_dict()[key], value)
    other_classes = tiny_plain_unet()
    other_classes.decoder.seg_layers[-1] = torch.nn.Conv2d(8, 5, 1)
    with pytest.raises(BaseModelError, match="differ in shape.*seg_layers"):
        load_base_weights(net, other_classes.state_dict(), tmp_path / "ckpt.pth")
    truncated = dict(list(base.state_dict().items())[:-1])
    with pytest.raises(BaseModelError, match="missing"):
        load_base_weights(net, truncated, tmp_path / "ckpt.pth")


def test_alpha_follows_tiny_gradients_from_its_initial_ones():
    """Alpha gradients on a trained base are ~1e-6; starting from ones, weight decay would drown them."""
    from nnunet_iac.cells.architecture_parameters import ArchitectureParameters
    from nnunet_iac.cells.topology import CellTopology
    from nnunet_iac.search.optimizers import ARCH_LR, architecture_optimizer

    arch = ArchitectureParameters(CellTopology(), num_operations=8)
    optimizer = architecture_optimizer(arch.parameters())
    preferred = torch.zeros_like(arch.alpha)
    preferred[:, 3] = 1.0
    for _ in range(20):
        optimizer.zero_grad()
        arch.alpha.grad = -1e-6 * preferred  # every edge's loss falls with op 3
        arch.beta.grad = torch.zeros_like(arch.beta)
        optimizer.step()
    spread = arch.alpha[:, 3] - arch.alpha[:, :3].max(dim=1).values
    assert torch.all(spread > 10 * ARCH_LR)
    assert torch.all(arch.operation_weights().argmax(dim=1) == 3)


def test_retrain_optimizer_is_chosen_by_name_with_a_clear_error():
    from nnunet_iac.search.optimizers import retrain_optimizer

    weights = [torch.nn.Parameter(torch.zeros(3))]
    adam, schedule = retrain_optimizer("adam", weights, 0.01, 3e-5, epochs=4)
    assert isinstance(adam, torch.optim.AdamW) and adam.param_groups[0]["lr"] == pytest.approx(1e-3)
    schedule.step(2)
    assert adam.param_groups[0]["lr"] < 1e-3
    sgd, _ = retrain_optimizer("sgd", weights, 0.01, 3e-5, epochs=4)
    assert sgd.param_groups[0]["momentum"] == 0.99 and sgd.param_groups[0]["lr"] == pytest.approx(0.01)
    with pytest.raises(SettingsError, match="nnUNet_IAC_retrain_optimizer='rmsprop' is not an optimizer"):
        IACSettings.from_env({"nnUNet_IAC_retrain_optimizer": "rmsprop"})


def test_retrain_lr_overrides_either_optimizer_and_refuses_bad_values():
    from nnunet_iac.search.optimizers import retrain_optimizer

    weights = [torch.nn.Parameter(torch.zeros(3))]
    lr = IACSettings.from_env({"nnUNet_IAC_retrain_lr": "3e-3"}).retrain_lr
    assert lr == pytest.approx(3e-3)
    for name in ("adam", "sgd"):
        optimizer, _ = retrain_optimizer(name, weights, 0.01, 3e-5, epochs=4, lr=lr)
        assert optimizer.param_groups[0]["lr"] == pytest.approx(3e-3)
    with pytest.raises(SettingsError, match="nnUNet_IAC_retrain_lr='fast' is not a number"):
        IACSettings.from_env({"nnUNet_IAC_retrain_lr": "fast"})
    for bad in ("-1e-3", "nan", "inf"):
        with pytest.raises(SettingsError, match="nnUNet_IAC_retrain_lr"):
            IACSettings.from_env({"nnUNet_IAC_retrain_lr": bad})
