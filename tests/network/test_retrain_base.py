"""nnUNet_IAC_retrain_base: which base weights Stage III trains, their optimizer group and train/eval mode;
nnUNet_IAC_genotype_epoch: Stage III on the genotype of one search epoch."""
import copy
import json

import pytest
import torch
from dynamic_network_architectures.architectures.unet import PlainConvUNet
from torch import nn

from nnunet_iac.network.base_policy import trainable_base_children
from nnunet_iac.network.builders import implant_discrete_cells
from nnunet_iac.cells.genotype import Genotype, GenotypeError
from nnunet_iac.search.genotype_choice import epoch_ranges
from nnunet_iac.network.implant import cell_parameters, freeze_base, is_base_key, trainable_base_parameters
from nnunet_iac.search.optimizers import RETRAIN_BASE_LR_FACTOR, retrain_optimizer
from nnunet_iac.network.reference_networks import EXAMPLE_GENOTYPE_DICT
from nnunet_iac.nnunet.retrain_setup import load_retrain_genotype

GENOTYPE = Genotype.from_dict(EXAMPLE_GENOTYPE_DICT)


def batchnorm_unet():
    """A small base with BatchNorm, whose running statistics change in train mode only."""
    return PlainConvUNet(input_channels=1, n_stages=3, features_per_stage=[8, 16, 32], conv_op=nn.Conv2d,
                         kernel_sizes=3, strides=[1, 2, 2], n_conv_per_stage=2, num_classes=3,
                         n_conv_per_stage_decoder=2, conv_bias=True, norm_op=nn.BatchNorm2d,
                         norm_op_kwargs={"eps": 1e-5, "affine": True}, nonlin=nn.LeakyReLU, deep_supervision=False)


def retrain_steps(policy, steps=3):
    """The base's state before and after a few Stage III steps under ``policy``."""
    base = batchnorm_unet()
    net = implant_discrete_cells(copy.deepcopy(base), GENOTYPE)
    trainable = trainable_base_children(net, policy)
    optimizer, _ = retrain_optimizer("adam", cell_parameters(net), 0.01, 3e-5, 4,
                                     base_parameters=trainable_base_parameters(net, trainable))
    freeze_base(net, trainable)
    net.train()
    before = {k: v.clone() for k, v in net.state_dict().items() if is_base_key(k)}
    x, target = torch.randn(4, 1, 32, 32), torch.randn(4, 3, 32, 32)
    for _ in range(steps):
        optimizer.zero_grad()
        ((net(x) - target) ** 2).mean().backward()
        optimizer.step()
    after = {k: v for k, v in net.state_dict().items() if is_base_key(k)}
    return net, optimizer, before, after


def changed(before, after, prefix):
    keys = [k for k in before if k.startswith(prefix) and before[k].is_floating_point()]
    assert keys
    return {k: not torch.equal(before[k], after[k]) for k in keys}


def test_frozen_keeps_every_base_tensor_and_has_one_group():
    net, optimizer, before, after = retrain_steps("frozen")
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert len(optimizer.param_groups) == 1
    assert not any(m.training for m in net.encoder.modules()) and not net.decoder.stages.training


def test_decoder_trains_the_decoder_in_train_mode_and_leaves_the_encoder_bit_identical():
    net, optimizer, before, after = retrain_steps("decoder")
    assert not any(changed(before, after, "encoder.").values())
    decoder = changed(before, after, "decoder.stages.")
    assert all(decoder[k] for k in decoder if k.endswith(("weight", "running_mean")))
    assert any(changed(before, after, "decoder.transpconvs.").values())
    assert not any(m.training for m in net.encoder.modules())
    assert net.decoder.stages.training and net.decoder.transpconvs.training and net.decoder.iac_cells.training
    cells, base = optimizer.param_groups
    assert base["lr"] == pytest.approx(RETRAIN_BASE_LR_FACTOR * cells["lr"])
    assert {id(p) for p in base["params"]} == {id(p) for p in trainable_base_parameters(net, ("stages", "transpconvs",
                                                                                              "seg_layers"))}


def test_all_trains_the_encoder_too():
    net, _, before, after = retrain_steps("all")
    assert any(changed(before, after, "encoder.").values())
    assert all(m.training for m in net.encoder.modules())


def test_base_lr_and_schedule_keep_the_groups_ratio():
    cells, base = [nn.Parameter(torch.zeros(2))], [nn.Parameter(torch.zeros(2))]
    for name in ("adam", "sgd", "adam_constant"):
        optimizer, schedule = retrain_optimizer(name, cells, 0.01, 3e-5, 10, base_parameters=base, base_lr=2e-5)
        schedule.step(5)
        ratio = optimizer.param_groups[1]["lr"] / optimizer.param_groups[0]["lr"]
        assert ratio == pytest.approx(2e-5 / optimizer.param_groups[0]["initial_lr"])
    with pytest.raises(ValueError, match="Unknown retrain base policy 'head'"):
        trainable_base_children(implant_discrete_cells(batchnorm_unet(), GENOTYPE), "head")


def write_search(folder, epochs):
    """A search folder: final genotype.json plus a history whose epoch e uses ``identity`` at node 0 iff e is odd."""
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    for epoch in epochs:
        genotype = copy.deepcopy(EXAMPLE_GENOTYPE_DICT)
        genotype["nodes"][0][0]["op"] = "identity" if epoch % 2 else "sep_conv_3x3"
        genotype["meta"] = {"epoch": epoch, "spatial_dims": 2, "levels": 3}
        rows.append({"epoch": epoch, "phase": "search", "genotype": genotype, "alpha_entropy": 2.0})
    (folder / "search_history.json").write_text(json.dumps(rows))
    GENOTYPE.save(folder / "genotype.json")
    return folder / "genotype.json"


def test_genotype_epoch_picks_that_epoch_next_to_the_default_or_the_given_genotype(tmp_path):
    default = write_search(tmp_path / "search", [0, 1, 2, 5])
    final, source = load_retrain_genotype(default)
    assert final == GENOTYPE and source == default
    odd, source = load_retrain_genotype(default, epoch=1)
    assert odd.nodes[0][0] == ("identity", 0) and odd.meta["genotype_epoch"] == 1
    assert source == default.parent / "search_history.json"
    other = write_search(tmp_path / "elsewhere", [3])
    picked, source = load_retrain_genotype(default, str(other), epoch=3)
    assert source.parent == other.parent and picked.nodes[0][0] == ("identity", 0)
    even, _ = load_retrain_genotype(default, epoch=2)
    assert even.nodes[0][0] == ("sep_conv_3x3", 0)


def test_genotype_epoch_errors_name_the_epochs_present_or_the_missing_history(tmp_path):
    default = write_search(tmp_path / "search", [0, 1, 2, 5])
    with pytest.raises(GenotypeError, match=r"no epoch 3; epochs present: 0-2, 5"):
        load_retrain_genotype(default, epoch=3)
    lonely = tmp_path / "lonely" / "genotype.json"
    lonely.parent.mkdir()
    GENOTYPE.save(lonely)
    with pytest.raises(GenotypeError, match=r"search history .*lonely/search_history.json, which does not exist"):
        load_retrain_genotype(default, str(lonely), epoch=0)
    (lonely.parent / "search_history.json").write_text("{")
    with pytest.raises(GenotypeError, match="not a search history"):
        load_retrain_genotype(default, str(lonely), epoch=0)
    assert epoch_ranges([0, 1, 2, 5, 7, 8]) == "0-2, 5, 7-8" and epoch_ranges([]) == ""
