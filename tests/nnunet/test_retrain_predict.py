"""Stage III and prediction through the real nnU-Net entry points on a tiny synthetic dataset."""
import copy
import json
import shutil

import numpy as np
import pytest
import SimpleITK as sitk
import torch


from nnunet_iac.nnunet.checkpointing import safe_load
from nnunet_iac.tools.cli import main as cli_main
from nnunet_iac.cells.genotype import Genotype, GenotypeError
from nnunet_iac.network.implant import ImplantedUNetDecoder, is_base_key
from nnunet_iac.network.implanted_network import CLASS_PATH
from nnunet_iac.network.reference_networks import EXAMPLE_GENOTYPE_DICT
from nnunet_workspace import (DATASET, DATASET_ID, assert_failed_write_kept_the_previous_files, epochs_started,
                              load_predictor, reference_network,
                              training_logs)

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


def predict_test_images(workspace, out, configuration, *folds):
    """nnUNetv2_predict on the dataset's imagesTs; checks one segmentation per input with the input's geometry."""
    images = workspace.root / "raw" / DATASET / "imagesTs"
    workspace.run("nnUNetv2_predict", "-i", str(images), "-o", str(out), "-d", str(DATASET_ID), "-c", configuration,
                  "-f", *folds, "-tr", RETRAIN, "-device", "cpu", "-npp", "1", "-nps", "1")
    inputs = sorted(images.glob("*_0000.nii.gz"))
    assert len(inputs) == 2
    for image_file in inputs:
        seg_file = out / image_file.name.replace("_0000.nii.gz", ".nii.gz")
        image, seg = sitk.ReadImage(str(image_file)), sitk.ReadImage(str(seg_file))
        assert seg.GetSize() == image.GetSize()
        assert np.allclose(seg.GetSpacing(), image.GetSpacing()) and np.allclose(seg.GetOrigin(), image.GetOrigin())
        assert set(np.unique(sitk.GetArrayFromImage(seg))) <= {0, 1, 2}


def test_nnunet_predict_gives_one_segmentation_per_input_with_its_geometry(retrained, workspace, tmp_path):
    predict_test_images(workspace, tmp_path / "pred", "2d", "0")


def fold_network(predictor):
    """The predictor's network with the weights of its first fold, in eval mode."""
    predictor.network.load_state_dict(predictor.list_of_parameters[0])
    return predictor.network.eval()


def test_predictor_network_equals_the_network_rebuilt_from_genotype_and_settings(retrained, workspace, monkeypatch):
    """plans.json losing or changing the implant mode, cell options or wiring changes the predictor's output."""
    predictor = load_predictor(workspace, monkeypatch, retrained["model"])
    network = fold_network(predictor)
    assert isinstance(network.decoder, ImplantedUNetDecoder)
    reference = reference_network(workspace, retrained["model"] / "fold_0")
    x = torch.randn(2, 1, *predictor.configuration_manager.patch_size)
    with torch.no_grad():
        predicted = network(x)
        assert torch.allclose(reference(x), predicted, atol=1e-6)
        # the cells contribute: zeroing their output projection changes the prediction
        for cell in reference.decoder.iac_cells:
            cell.zero_output()
        assert not torch.allclose(reference(x), predicted, atol=1e-4)


def test_predictor_refuses_a_plans_json_that_lost_the_genotype(retrained, workspace, monkeypatch, tmp_path):
    model = tmp_path / retrained["model"].name
    shutil.copytree(retrained["model"], model, ignore=shutil.ignore_patterns("validation", "*.png", "*.txt"))
    plans = json.loads((model / "plans.json").read_text())
    del plans["configurations"]["2d"]["architecture"]["arch_kwargs"]["iac_genotype"]
    (model / "plans.json").write_text(json.dumps(plans))
    with pytest.raises(GenotypeError, match="arch_kwargs lack iac_genotype.*plans.json"):
        load_predictor(workspace, monkeypatch, model)


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
    interrupted = safe_load(folder / "checkpoint_latest.pth")
    assert interrupted["current_epoch"] == 1
    logs_before = training_logs(folder)
    workspace.run(*command, "--c", env=retrained["env"])
    (continued_log,) = training_logs(folder) - logs_before
    assert epochs_started(continued_log) == [1], "--c did not continue at the interrupted epoch"
    continued = safe_load(folder / "checkpoint_final.pth")
    for key in ("epoch_start_timestamps", "epoch_end_timestamps", "train_losses"):
        assert continued["logging"][key][:1] == interrupted["logging"][key][:1], key
    reference = safe_load(retrained["model"] / "fold_0" / "checkpoint_final.pth")
    assert continued["current_epoch"] == reference["current_epoch"] == 2
    for key, value in reference["network_weights"].items():
        assert torch.equal(continued["network_weights"][key], value), key


def test_the_retrain_probes_its_cells_every_epoch_and_can_train_them_with_adas(retrained, workspace, tmp_path):
    """Issue 17: probe_history.json (and probe.png) from the default retrain; nnUNet_IAC_retrain_optimizer=adas
    (in a results folder of its own) gives every cell convolution its own rate, moved by its probes."""
    probes = json.loads((retrained["model"] / "fold_0" / "probe_history.json").read_text())
    assert [row["epoch"] for row in probes] == [0, 1] and "learning_rates" not in probes[0]
    assert {"sep_conv_3x3", "frame"} <= set(probes[0]["operations"])
    assert (retrained["model"] / "fold_0" / "probe.png").is_file()
    env = {**retrained["env"], "nnUNet_IAC_retrain_optimizer": "adas", "nnUNet_results": str(tmp_path)}
    workspace.run("nnUNetv2_train", str(DATASET_ID), "2d", "0", "-tr", RETRAIN, "-device", "cpu", env=env)
    folder = tmp_path / DATASET / f"{RETRAIN}__nnUNetPlans__2d" / "fold_0"
    groups = safe_load(folder / "checkpoint_final.pth")["optimizer_state"]["param_groups"]
    layers = [g for g in groups if g.get("adas_module")]
    assert layers and all(g["adas_epoch"] == 1 for g in layers)
    assert len({g["lr"] for g in layers}) > 1
    rows = json.loads((folder / "probe_history.json").read_text())
    assert all(row["learning_rates"] for row in rows)


def test_a_checkpoint_write_failing_half_way_keeps_the_last_good_retrain_checkpoint(retrained, workspace, tmp_path):
    """The disk fills up half-way through epoch 1's checkpoint_latest.pth (tests/nnunet_trainers): epoch 0's
    checkpoint and the genotype stay intact and no temporary file is left."""
    trainer = "nnUNetTrainerIACRetrainDiskFull"
    snapshot = tmp_path / "before_epoch_1"
    env = {**retrained["env"], "nnUNet_IAC_epochs": "3", "IAC_TEST_DISK_FULL_EPOCH": "1",
           "IAC_TEST_DISK_FULL_FILE": "checkpoint_latest.pth", "IAC_TEST_SNAPSHOT": str(snapshot),
           "nnUNet_results": str(tmp_path / "results")}
    result = workspace.run("nnUNetv2_train", str(DATASET_ID), "2d", "0", "-tr", trainer, "-device", "cpu", env=env,
                           check=False)
    folder = tmp_path / "results" / DATASET / f"{trainer}__nnUNetPlans__2d" / "fold_0"
    assert_failed_write_kept_the_previous_files(result, folder, snapshot, ["checkpoint_latest.pth", "genotype.json"])
    assert safe_load(folder / "checkpoint_latest.pth")["current_epoch"] == 1


def test_missing_broken_or_foreign_genotype_stops_before_training(retrained, workspace, tmp_path):
    env = retrained["env"]
    err = _retrain_fails(workspace, 1, {**env, "nnUNet_IAC_genotype": str(tmp_path / "none.json")})
    assert "No genotype found" in err and str(tmp_path / "none.json") in err
    broken = tmp_path / "broken.json"
    broken.write_text("{")
    assert "not valid JSON" in _retrain_fails(workspace, 1, {**env, "nnUNet_IAC_genotype": str(broken)})
    three_d = write_genotype(tmp_path / "3d.json", spatial_dims=3)
    assert "searched on a 3D network" in _retrain_fails(workspace, 1, {**env, "nnUNet_IAC_genotype": str(three_d)})
    deeper = write_genotype(tmp_path / "deeper.json", levels=5)
    err = _retrain_fails(workspace, 1, {**env, "nnUNet_IAC_genotype": str(deeper)})
    assert "with 5 decoder levels; this one has 2" in err and "nnUNet_IAC_genotype" in err
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
    assert "Cell probes of the retrain" in out and "| 0 | sep_conv_3x3 |" in out and "(epoch 1)" in out
    picture = tmp_path / "g.png"
    assert cli_main(["show", str(retrained["model"] / "fold_0" / "genotype.json"), "-o", str(picture)]) == 0
    assert picture.stat().st_size > 1000


@pytest.fixture(scope="module")
def second_fold(retrained, workspace):
    """Fold 2 retrained with fold 0's genotype into the same model folder (its base: fold 0's, given as a file)."""
    env = {**retrained["env"], "nnUNet_IAC_base": str(retrained["base"] / "fold_0" / "checkpoint_final.pth"),
           "nnUNet_IAC_epochs": "1", "nnUNet_IAC_retrain_validation": "0"}
    workspace.run("nnUNetv2_train", str(DATASET_ID), "2d", "2", "-tr", RETRAIN, "-device", "cpu", env=env)
    return retrained["model"] / "fold_2"


def test_two_fold_ensemble_averages_the_logits_of_both_folds(retrained, second_fold, workspace, monkeypatch,
                                                             tmp_path):
    logits = {}
    for folds in ((0,), (2,), (0, 2)):
        predictor = load_predictor(workspace, monkeypatch, retrained["model"], folds)
        patch = predictor.configuration_manager.patch_size
        data = torch.randn(1, 2, *patch, generator=torch.Generator().manual_seed(0))  # two slices of one channel
        logits[folds] = predictor.predict_logits_from_preprocessed_data(data)
    assert not torch.allclose(logits[(0,)], logits[(2,)], atol=1e-4), "the two folds should differ"
    assert torch.allclose(logits[(0, 2)], (logits[(0,)] + logits[(2,)]) / 2, atol=1e-5)
    predict_test_images(workspace, tmp_path / "ensemble", "2d", "0", "2")


@pytest.fixture(scope="module")
def retrained_3d(workspace, tmp_path_factory):
    """3d_fullres Stage III on one epoch of two iterations, with a 3D genotype of the plan's depth."""
    base = workspace.train_base("3d_fullres")
    plans = json.loads((workspace.root / "preprocessed" / DATASET / "nnUNetPlans.json").read_text())
    levels = plans["configurations"]["3d_fullres"]["architecture"]["arch_kwargs"]["n_stages"] - 1
    genotype = write_genotype(tmp_path_factory.mktemp("genotype_3d") / "genotype.json", spatial_dims=3, levels=levels)
    env = {"nnUNet_IAC_epochs": "1", "nnUNet_IAC_iterations_per_epoch": "2", "nnUNet_IAC_val_iterations_per_epoch": "1",
           "nnUNet_IAC_retrain_validation": "0", "nnUNet_IAC_base": str(base), "nnUNet_IAC_genotype": str(genotype)}
    workspace.run("nnUNetv2_train", str(DATASET_ID), "3d_fullres", "0", "-tr", RETRAIN, "-device", "cpu", env=env)
    return workspace.results / f"{RETRAIN}__nnUNetPlans__3d_fullres"


def test_3d_fullres_retrain_predicts_with_the_network_of_its_genotype(retrained_3d, workspace, monkeypatch, tmp_path):
    predictor = load_predictor(workspace, monkeypatch, retrained_3d)
    network = fold_network(predictor)
    x = torch.randn(1, 1, *predictor.configuration_manager.patch_size)
    with torch.no_grad():
        assert torch.allclose(reference_network(workspace, retrained_3d / "fold_0", "3d_fullres")(x), network(x),
                              atol=1e-6)
    assert isinstance(network.decoder.iac_cells[0].output_projection, torch.nn.Conv3d)
    predict_test_images(workspace, tmp_path / "pred_3d", "3d_fullres", "0")
