"""Upstream drift guards for our checkpoints (issue 15, item 5).

``nnunet_checkpoint`` (nnunet_iac/nnunet/checkpointing.py) copies the dict nnU-Net's
``nnUNetTrainer.save_checkpoint`` writes, because our trainers write it atomically themselves. nnU-Net's
own code then reads those files: ``nnUNetTrainer.load_checkpoint`` (``--c``), the predictor
(``nnUNetv2_predict``) and ``load_pretrained_weights`` (``-pretrained_weights``). If a new nnU-Net
writes or reads another key, our checkpoints would break those entry points; these tests fail first and
say what to re-check.

The trainer here is a real ``IACTrainerBase`` built by nnU-Net's ``__init__`` on a hand-written
plan (no dataset needed), with a tiny network and optimizer put in place of ``initialize``.
"""
import ast
import importlib.metadata
import inspect
import os
import textwrap

import pytest
import torch
from nnunetv2.inference.predict_from_raw_data import nnUNetPredictor
from nnunetv2.run.load_pretrained_weights import load_pretrained_weights
from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer

from nnunet_iac.network.reference_networks import tiny_plain_unet
from nnunet_iac.nnunet.checkpointing import IAC_KEY, safe_load
from nnunet_iac.nnunet.trainer_base import IACTrainerBase

NNUNET_VERSION = importlib.metadata.version("nnunetv2")
RECHECK = "re-check nnunet_checkpoint in nnunet_iac/nnunet/checkpointing.py against nnUNetTrainer.save_checkpoint"
#: nnU-Net functions that read a training checkpoint, and the name the checkpoint has inside each
READERS = {
    "nnUNetTrainer.load_checkpoint": (nnUNetTrainer.load_checkpoint, "checkpoint"),
    "nnUNetPredictor.initialize_from_trained_model_folder":
        (nnUNetPredictor.initialize_from_trained_model_folder, "checkpoint"),
    "load_pretrained_weights": (load_pretrained_weights, "saved_model"),
}
#: the init_args entries nnunet_iac/nnunet/base_model.py compares a base checkpoint by; it skips a check
#: whose entry is missing, so a rename upstream would switch the check off without an error
BASE_MODEL_INIT_ARGS = ("plans", "configuration", "dataset_json")


def tiny_plans() -> dict:
    """A 2d plan for a 3-stage PlainConvUNet, enough for nnUNetTrainer.__init__ (it builds no network)."""
    return {
        "dataset_name": "Dataset991_Drift", "plans_name": "nnUNetPlans",
        "configurations": {"2d": {
            "data_identifier": "nnUNetPlans_2d", "patch_size": [32, 32], "batch_size": 2, "spacing": [1.0, 1.0],
            "architecture": {
                "network_class_name": "dynamic_network_architectures.architectures.unet.PlainConvUNet",
                "arch_kwargs": {}, "_kw_requires_import": [],
            },
        }},
    }


DATASET_JSON = {"channel_names": {"0": "MR"}, "labels": {"background": 0, "a": 1, "b": 2}, "numTraining": 2,
                "file_ending": ".nii.gz"}


@pytest.fixture
def trainer(tmp_path, monkeypatch):
    """Our trainers' base class, mid-training: one optimizer step taken, epoch 4, a best EMA, mirroring axes."""
    monkeypatch.setenv("nnUNet_results", str(tmp_path / "results"))
    for key in [k for k in os.environ if k.startswith("nnUNet_IAC_")]:
        monkeypatch.delenv(key)
    plans = {**tiny_plans(), "continue_training": False}
    trainer = IACTrainerBase(plans, "2d", 0, DATASET_JSON, torch.device("cpu"))
    trainer.network = tiny_plain_unet()
    trainer.optimizer = torch.optim.SGD(trainer.network.parameters(), lr=0.01, momentum=0.9)
    trainer.network(torch.randn(1, 1, 32, 32))[0].sum().backward()
    trainer.optimizer.step()
    trainer.current_epoch, trainer._best_ema, trainer.inference_allowed_mirroring_axes = 4, 0.5, (0, 1)
    return trainer


@pytest.fixture
def checkpoints(trainer, tmp_path):
    """(nnU-Net's own save_checkpoint on our trainer, our save_checkpoint on it), both read back from disk."""
    nnUNetTrainer.save_checkpoint(trainer, str(tmp_path / "theirs.pth"))
    trainer.save_checkpoint(str(tmp_path / "ours.pth"))
    theirs = torch.load(tmp_path / "theirs.pth", map_location="cpu", weights_only=False)
    return theirs, safe_load(tmp_path / "ours.pth")


def test_we_write_every_key_nnunet_writes_and_only_iac_besides(checkpoints):
    theirs, ours = checkpoints
    missing = sorted(set(theirs) - set(ours))
    assert not missing, (f"nnU-Net's nnUNetTrainer.save_checkpoint (nnunetv2 {NNUNET_VERSION}) writes {missing}, "
                         f"our checkpoints lack them; {RECHECK}.")
    extra = sorted(set(ours) - set(theirs) - {IAC_KEY})
    assert not extra, (f"nnU-Net's nnUNetTrainer.save_checkpoint (nnunetv2 {NNUNET_VERSION}) no longer writes "
                       f"{extra}; {RECHECK}.")


def same(a, b) -> bool:
    """Deep equality of checkpoint values: tensors element-wise, containers entry by entry."""
    if torch.is_tensor(a) or torch.is_tensor(b):
        return torch.is_tensor(a) and torch.is_tensor(b) and torch.equal(a, b)
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return type(a) is type(b) and len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    return a == b


def test_every_key_holds_what_nnunet_writes_there(checkpoints):
    """nnU-Net changing what a key means (say, current_epoch no longer the next epoch) shows here."""
    theirs, ours = checkpoints
    differing = sorted(k for k in set(theirs) & set(ours) if not same(theirs[k], ours[k]))
    assert not differing, (f"nnU-Net's nnUNetTrainer.save_checkpoint (nnunetv2 {NNUNET_VERSION}) writes other "
                           f"values under {differing}; {RECHECK}.")


def function_tree(function) -> ast.AST:
    return ast.parse(textwrap.dedent(inspect.getsource(function)))


def key_path(node: ast.Subscript, variable: str) -> tuple[str, ...] | None:
    """``variable['a']['b']`` -> ('a', 'b'); None for any other subscript."""
    keys = []
    while isinstance(node, ast.Subscript):
        if not (isinstance(node.slice, ast.Constant) and isinstance(node.slice.value, str)):
            return None
        keys.append(node.slice.value)
        node = node.value
    return tuple(reversed(keys)) if isinstance(node, ast.Name) and node.id == variable else None


def checkpoint_reads(function, variable: str) -> set[tuple[str, ...]]:
    """Every ``variable['key']...`` chain in the source of ``function``, as key paths."""
    paths = {key_path(node, variable) for node in ast.walk(function_tree(function)) if isinstance(node, ast.Subscript)}
    return {p for p in paths if p}


def resolves(checkpoint: dict, path: tuple[str, ...]) -> bool:
    value = checkpoint
    for key in path:
        if not isinstance(value, dict) or key not in value:
            return False
        value = value[key]
    return True


@pytest.mark.parametrize("reader", list(READERS))
def test_every_key_nnunet_reads_is_in_our_checkpoint(reader, checkpoints):
    function, variable = READERS[reader]
    reads = checkpoint_reads(function, variable)
    assert ("network_weights",) in reads, (
        f"{reader} (nnunetv2 {NNUNET_VERSION}) no longer reads {variable}['network_weights']: it was restructured. "
        f"Re-check how it reads checkpoints and update READERS in tests/nnunet/test_checkpoint_drift.py.")
    _, ours = checkpoints
    missing = sorted("".join(f"[{k!r}]" for k in path) for path in reads if not resolves(ours, path))
    assert not missing, (f"{reader} (nnunetv2 {NNUNET_VERSION}) reads {', '.join(missing)} from a checkpoint; ours "
                         f"lack them: {RECHECK}, and that our trainers keep nnU-Net's __init__ signature "
                         f"(init_args is filled from it).")


def test_init_args_hold_what_the_base_checks_compare(checkpoints, trainer):
    """init_args is nnU-Net's record of the trainer's __init__ arguments; our base-model checks read three."""
    _, ours = checkpoints
    missing = [k for k in BASE_MODEL_INIT_ARGS if k not in ours["init_args"]]
    assert not missing, (f"nnU-Net (nnunetv2 {NNUNET_VERSION}) no longer records {missing} in a checkpoint's "
                         f"init_args; re-check check_base_matches and check_base_dataset in "
                         f"nnunet_iac/nnunet/base_model.py, which skip their checks when these are missing.")
    assert ours["init_args"]["configuration"] == "2d"
    assert ours["init_args"]["plans"]["plans_name"] == "nnUNetPlans"
    assert ours["init_args"]["dataset_json"] == DATASET_JSON
