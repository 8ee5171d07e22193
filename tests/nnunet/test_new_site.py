"""Adapting a model to a new site through nnU-Net's own commands (issue 36): the shared workspace's dataset and its
tiny base are the source; a second synthetic dataset, with larger images (so that its own plans build another
network), is the target. Its own plans are refused through nnUNetv2_train, the commands the refusal names are
run as given, and search, retrain and nnUNetv2_predict then run on the target with the source's base."""
import hashlib
import json
import re
import shlex
import shutil

import numpy as np
import pytest
import SimpleITK as sitk
import torch

from nnunet_iac.network.implant import is_base_key
from nnunet_iac.nnunet.checkpointing import safe_load
from nnunet_iac.tools.synthetic_dataset import make_synthetic_dataset
from nnunet_workspace import DATASET, Workspace

pytestmark = pytest.mark.integration

TARGET_ID = 994
TARGET = "Dataset994_IACNewSite"
MOVED_PLANS = "nnUNetPlansFrom990"
BUDGET = {"nnUNet_IAC_epochs": "1", "nnUNet_IAC_warmup_epochs": "0", "nnUNet_IAC_iterations_per_epoch": "2",
          "nnUNet_IAC_val_iterations_per_epoch": "1", "nnUNet_IAC_probe_every": "0",
          "nnUNet_IAC_search_validation": "0", "nnUNet_IAC_retrain_validation": "0"}


def sha256(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def train(workspace: Workspace, trainer: str, env: dict, *plans: str, check: bool = True):
    return workspace.run("nnUNetv2_train", str(TARGET_ID), "2d", "0", "-tr", trainer, *plans, "-device", "cpu",
                         env=env, check=check)


def run_named_command(workspace: Workspace, message: str, command: str, *extra: str) -> None:
    """Run ``command`` with the arguments the refusal gave it (up to the next comma), as a user would copy it."""
    arguments = re.search(rf"{command} ([^,]+),", message).group(1)
    workspace.run(command, *shlex.split(arguments), *extra, env={"nnUNet_n_proc_DA": "1"})


@pytest.fixture(scope="module")
def new_site(workspace):
    base = workspace.train_base("2d")
    base_file = base / "fold_0" / "checkpoint_final.pth"
    base_hash = sha256(base_file)
    make_synthetic_dataset(workspace.env["nnUNet_raw"], TARGET_ID, name="IACNewSite", num_cases=6, num_test_cases=2,
                           shape=(8, 48, 40), seed=1)
    workspace.run("nnUNetv2_plan_and_preprocess", "-d", str(TARGET_ID), "-c", "2d", "-np", "1", "-npfp", "1",
                  env={"nnUNet_n_proc_DA": "1"})
    env = {**BUDGET, "nnUNet_IAC_base": str(base)}
    refused = train(workspace, "nnUNetTrainerIACSearch", env, check=False)
    run_named_command(workspace, refused.stderr, "nnUNetv2_move_plans_between_datasets")
    run_named_command(workspace, refused.stderr, "nnUNetv2_preprocess", "-np", "1")
    for trainer in ("nnUNetTrainerIACSearch", "nnUNetTrainerIACRetrain"):
        train(workspace, trainer, env, "-p", MOVED_PLANS)
    results = workspace.root / "results" / TARGET
    return {"refused": refused, "base": base_file, "base_hash": base_hash, "env": env,
            "search": results / f"nnUNetTrainerIACSearch__{MOVED_PLANS}__2d" / "fold_0",
            "model": results / f"nnUNetTrainerIACRetrain__{MOVED_PLANS}__2d"}


def test_the_targets_own_plans_are_refused_naming_what_differs_and_the_fix(new_site):
    refused = new_site["refused"]
    assert refused.returncode != 0
    message = refused.stderr.replace("\n", " ")
    assert "BaseModelError" in message
    assert (f"trained with plans 'nnUNetPlans' of {DATASET} whose architecture settings" in message
            and f"differ from the current plans 'nnUNetPlans' of {TARGET}" in message)
    assert "n_stages" in message
    assert f"-p {MOVED_PLANS} to nnUNetv2_train and nnUNetv2_predict" in message


def test_search_and_retrain_on_the_target_use_the_source_base_and_leave_it_as_it_was(new_site):
    assert sha256(new_site["base"]) == new_site["base_hash"]
    for folder in (new_site["search"], new_site["model"] / "fold_0"):
        settings = json.loads((folder / "iac_settings.json").read_text())
        assert settings["base_checkpoint"] == str(new_site["base"])
    genotype = json.loads((new_site["search"] / "genotype.json").read_text())
    assert (genotype["meta"]["dataset"], genotype["meta"]["plans"]) == (TARGET, MOVED_PLANS)
    assert json.loads((new_site["model"] / "fold_0" / "genotype.json").read_text())["nodes"] == genotype["nodes"]
    base = safe_load(new_site["base"])["network_weights"]
    retrained = safe_load(new_site["model"] / "fold_0" / "checkpoint_final.pth")["network_weights"]
    assert sorted(k for k in retrained if is_base_key(k)) == sorted(base)
    assert all(torch.equal(retrained[k], base[k]) for k in base)


def test_nnunet_predict_needs_only_the_targets_model_folder(new_site, workspace, tmp_path):
    """nnUNetv2_predict with an nnUNet_results that holds nothing but the retrained model folder (no source
    dataset, no base) and empty raw and preprocessed folders."""
    results = tmp_path / "results" / TARGET / new_site["model"].name
    shutil.copytree(new_site["model"], results)
    empty = tmp_path / "empty"
    empty.mkdir()
    images = workspace.root / "raw" / TARGET / "imagesTs"
    out = tmp_path / "predicted"
    workspace.run("nnUNetv2_predict", "-i", str(images), "-o", str(out), "-d", str(TARGET_ID), "-c", "2d", "-f", "0",
                  "-tr", "nnUNetTrainerIACRetrain", "-p", MOVED_PLANS, "-device", "cpu", "-npp", "1", "-nps", "1",
                  env={"nnUNet_results": str(tmp_path / "results"), "nnUNet_raw": str(empty),
                       "nnUNet_preprocessed": str(empty)})
    inputs = sorted(images.glob("*_0000.nii.gz"))
    assert len(inputs) == 2
    for image_file in inputs:
        image = sitk.ReadImage(str(image_file))
        seg = sitk.ReadImage(str(out / image_file.name.replace("_0000.nii.gz", ".nii.gz")))
        assert seg.GetSize() == image.GetSize() == (40, 48, 8)
        assert set(np.unique(sitk.GetArrayFromImage(seg))) <= {0, 1, 2}

