"""Stage III and prediction through the real nnU-Net entry points on a tiny synthetic dataset."""
import copy
import json

import numpy as np
import pytest
import SimpleITK as sitk
import torch

from nnunet_iac.checkpointing import safe_load
from nnunet_iac.cli import main as cli_main
from nnunet_iac.genotype import Genotype
from nnunet_iac.implant import ImplantedUNetDecoder, is_base_key
from nnunet_iac.implanted_network import CLASS_PATH
from nnunet_iac.reference_networks import EXAMPLE_GENOTYPE_DICT
from nnunet_workspace import DATASET, DATASET_ID

pytestmark = pytest.mark.integration

BUDGET = {"nnUNet_IAC_epochs": "2", "nnUNet_IAC_iterations_per_epoch": "4", "nnUNet_IAC_val_iterations_per_epoch": "1"}
RETRAIN = "nnUNetTrainerIACRetrain"


def write_genotype(path, **meta):
    data = copy.deepcopy(EXAMPLE_GENOTYPE_DICT)
    data["meta"] = {"spatial_dims": 2, "levels": 2, **meta}
    path.write_text(json.dumps(data))
    return path


@pytest.fixture(scope="module")
def retrained(workspace, tmp_path_factory):
    base = workspace.train_base("2d")
    genotype = write_genotype(tmp_path_factory.mktemp("genotype") / "genotype.json")
    env = {**BUDGET, "nnUNet_IAC_base": str(base), "nnUNet_IAC_genotype": str(genotype)}
    workspace.run("nnUNetv2_train", str(DATASET_ID), "2d", "0", "-tr", RETRAIN, "-device", "cpu", env=env)
    model = workspace.results / f"{RETRAIN}__nnUNetPlans__2d"
    return {"base": base, "genotype": genotype, "env": env, "model": model}


def test_model_folder_plans_describe_the_implanted_network(retrained):
    plans = json.loads((retrained["model"] / "plans.json").read_text())
    arch = plans["configurations"]["2d"]["architecture"]
    assert arch["network_class_name"] == CLASS_PATH
    assert Genotype.from_dict(arch["arch_kwargs"]["iac_genotype"]) == Genotype.from_dict(EXAMPLE_GENOTYPE_DICT)
    assert (retrained["model"] / "fold_0" / "genotype.json").is_file()
    assert (retrained["model"] / "fold_0" / "validation" / "summary.json").is_file()


def test_base_tensors_in_the_retrained_checkpoint_equal_the_base(retrained):
    base = safe_load(retrained["base"] / "fold_0" / "checkpoint_final.pth")["network_weights"]
    weights = safe_load(retrained["model"] / "fold_0" / "checkpoint_final.pth")["network_weights"]
    assert sorted(k for k in weights if is_base_key(k)) == sorted(base)
    assert all(torch.equal(weights[k], base[k]) for k in base)
    assert any(".iac_cells." in k for k in weights)


def test_cells_were_retrained_with_the_default_optimizer(retrained):
    """Default nnUNet_IAC_retrain_optimizer=adam: AdamW state, and the zero-initialized projections moved."""
    checkpoint = safe_load(retrained["model"] / "fold_0" / "checkpoint_final.pth")
    group = checkpoint["optimizer_state"]["param_groups"][0]
    assert group["amsgrad"] is True and "momentum" not in group
    projections = [v for k, v in checkpoint["network_weights"].items() if k.endswith("output_projection.weight")]
    assert projections and all(v.abs().max() > 0 for v in projections)


def test_nnunet_predict_gives_one_segmentation_per_input_with_its_geometry(retrained, workspace, tmp_path):
    images = workspace.root / "raw" / DATASET / "imagesTs"
    out = tmp_path / "pred"
    workspace.run("nnUNetv2_predict", "-i", str(images), "-o", str(out), "-d", str(DATASET_ID), "-c", "2d",
                  "-f", "0", "-tr", RETRAIN, "-device", "cpu", "-npp", "1", "-nps", "1")
    inputs = sorted(images.glob("*_0000.nii.gz"))
    assert len(inputs) == 2
    for image_file in inputs:
        seg_file = out / image_file.name.replace("_0000.nii.gz", ".nii.gz")
        image, seg = sitk.ReadImage(str(image_file)), sitk.ReadImage(str(seg_file))
        assert seg.GetSize() == image.GetSize()
        assert np.allclose(seg.GetSpacing(), image.GetSpacing()) and np.allclose(seg.GetOrigin(), image.GetOrigin())
        assert set(np.unique(sitk.GetArrayFromImage(seg))) <= {0, 1, 2}


def test_predictor_network_has_the_cells_and_reproduces_the_trained_network(retrained, workspace, monkeypatch):
    for key, value in workspace.env.items():
        if key.startswith("nnUNet_"):
            monkeypatch.setenv(key, value)
    from nnunetv2.inference.predict_from_raw_data import nnUNetPredictor
    from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer  # noqa: F401  (import order)

    predictor = nnUNetPredictor(device=torch.device("cpu"), perform_everything_on_device=False)
    predictor.initialize_from_trained_model_folder(str(retrained["model"]), use_folds=(0,))
    network = predictor.network
    assert isinstance(network.decoder, ImplantedUNetDecoder)
    assert network.decoder.iac_cells[0].genotype == Genotype.from_dict(EXAMPLE_GENOTYPE_DICT)
    checkpoint = safe_load(retrained["model"] / "fold_0" / "checkpoint_final.pth")
    network.load_state_dict(predictor.list_of_parameters[0])
    network.eval()
    x = torch.randn(1, 1, *predictor.configuration_manager.patch_size)
    with torch.no_grad():
        predicted = network(x)
    trained = copy.deepcopy(network)
    trained.load_state_dict(checkpoint["network_weights"])
    with torch.no_grad():
        assert torch.equal(trained(x), predicted)
        # the cells contribute: zeroing their output projection changes the prediction
        for cell in trained.decoder.iac_cells:
            cell.zero_output()
        assert not torch.equal(trained(x), predicted)


def _retrain_fails(workspace, fold, env):
    result = workspace.run("nnUNetv2_train", str(DATASET_ID), "2d", str(fold), "-tr", RETRAIN, "-device", "cpu",
                           env=env, check=False)
    assert result.returncode != 0
    return result.stderr


def test_interrupted_and_continued_retrain_ends_with_the_same_weights(retrained, workspace):
    trainer = "nnUNetTrainerIACRetrainKilled"
    command = ("nnUNetv2_train", str(DATASET_ID), "2d", "0", "-tr", trainer, "-device", "cpu")
    killed = workspace.run(*command, env={**retrained["env"], "IAC_TEST_KILL_AFTER_EPOCH": "0"}, check=False)
    assert killed.returncode == 3
    folder = workspace.results / f"{trainer}__nnUNetPlans__2d" / "fold_0"
    assert safe_load(folder / "checkpoint_latest.pth")["current_epoch"] == 1
    workspace.run(*command, "--c", env=retrained["env"])
    continued = safe_load(folder / "checkpoint_final.pth")
    reference = safe_load(retrained["model"] / "fold_0" / "checkpoint_final.pth")
    assert continued["current_epoch"] == reference["current_epoch"] == 2
    for key, value in reference["network_weights"].items():
        assert torch.equal(continued["network_weights"][key], value), key


def test_missing_broken_or_foreign_genotype_stops_before_training(retrained, workspace, tmp_path):
    env = retrained["env"]
    err = _retrain_fails(workspace, 1, {**env, "nnUNet_IAC_genotype": str(tmp_path / "none.json")})
    assert "No genotype found" in err and str(tmp_path / "none.json") in err
    broken = tmp_path / "broken.json"
    broken.write_text("{")
    assert "not valid JSON" in _retrain_fails(workspace, 1, {**env, "nnUNet_IAC_genotype": str(broken)})
    three_d = write_genotype(tmp_path / "3d.json", spatial_dims=3)
    assert "searched on a 3D network" in _retrain_fails(workspace, 1, {**env, "nnUNet_IAC_genotype": str(three_d)})
    default = {k: v for k, v in env.items() if k != "nnUNet_IAC_genotype"}
    expected = workspace.results / "nnUNetTrainerIACSearch__nnUNetPlans__2d" / "fold_3" / "genotype.json"
    assert str(expected) in _retrain_fails(workspace, 3, default)
    assert not (retrained["model"] / "fold_1" / "checkpoint_final.pth").exists()


def test_second_fold_with_another_genotype_is_refused(retrained, workspace, tmp_path):
    other = json.loads(retrained["genotype"].read_text())
    other["nodes"][0][0]["op"] = "identity"
    other_file = tmp_path / "other.json"
    other_file.write_text(json.dumps(other))
    err = _retrain_fails(workspace, 1, {**retrained["env"], "nnUNet_IAC_genotype": str(other_file)})
    assert "fold_0 trained with other cells" in err and "separate plans identifier" in err
    assert not (retrained["model"] / "fold_1").exists(), "refused before nnU-Net created the fold folder"


def test_summary_and_show_work_on_the_produced_folders(retrained, workspace, monkeypatch, capsys, tmp_path):
    monkeypatch.setenv("nnUNet_results", workspace.env["nnUNet_results"])
    assert cli_main(["summary", "-d", str(DATASET_ID), "-c", "2d"]) == 0
    out = capsys.readouterr().out
    assert "| 0 | mean |" in out and "added by the cells" in out and "sep_conv_3x3(skip)" in out
    picture = tmp_path / "g.png"
    assert cli_main(["show", str(retrained["model"] / "fold_0" / "genotype.json"), "-o", str(picture)]) == 0
    assert picture.stat().st_size > 1000
