"""Search, retrain and predict with a residual-encoder plan through nnU-Net's own entry points (issue 15, item 6).

The plain-plan tests (test_search_trainer.py, test_retrain_predict.py) never build a ResidualEncoderUNet,
whose encoder stages are residual blocks with their own stem. Here nnU-Net's ResEnc M planner plans the
tiny synthetic dataset, a CPU-sized copy of that plan (nnunet_workspace.reduced_resenc_plans) trains a base,
and the IAC search, retrain and nnUNetv2_predict run on it under that plans name.
"""
import json
from types import SimpleNamespace

import numpy as np
import pytest
import SimpleITK as sitk
import torch
from dynamic_network_architectures.building_blocks.residual_encoders import ResidualEncoder

from nnunet_iac.cells.discrete_cell import DiscreteCell
from nnunet_iac.cells.genotype import Genotype
from nnunet_iac.network.implant import ImplantedUNetDecoder, is_base_key
from nnunet_iac.network.implanted_network import CLASS_PATH
from nnunet_iac.nnunet.checkpointing import safe_load
from nnunet_workspace import (DATASET, DATASET_ID, load_predictor, plan_resenc, reference_network,
                              train_base_with_plans)

pytestmark = pytest.mark.integration

CONFIGURATION = "2d"
RESENC_CLASS = "dynamic_network_architectures.architectures.unet.ResidualEncoderUNet"
SEARCH, RETRAIN = "nnUNetTrainerIACSearch", "nnUNetTrainerIACRetrain"
#: one warm-up and one search epoch, so alpha/beta move once; no final validation
SEARCH_ENV = {"nnUNet_IAC_epochs": "2", "nnUNet_IAC_warmup_epochs": "1", "nnUNet_IAC_iterations_per_epoch": "2",
              "nnUNet_IAC_val_iterations_per_epoch": "1", "nnUNet_IAC_stable_epochs": "0",
              "nnUNet_IAC_search_validation": "0"}
RETRAIN_ENV = {"nnUNet_IAC_epochs": "1", "nnUNet_IAC_iterations_per_epoch": "2",
               "nnUNet_IAC_val_iterations_per_epoch": "1", "nnUNet_IAC_retrain_validation": "0"}


@pytest.fixture(scope="module")
def resenc(workspace, tmp_path_factory):
    """Base, search and retrain on the reduced ResEnc plan; the retrain's genotype comes from the search's default
    location for that plans name. Then nnUNetv2_predict on imagesTs, with probabilities."""
    plans = plan_resenc(workspace, CONFIGURATION)
    base = train_base_with_plans(workspace, CONFIGURATION, plans)
    train = ("nnUNetv2_train", str(DATASET_ID), CONFIGURATION, "0", "-p", plans, "-device", "cpu")
    workspace.run(*train, "-tr", SEARCH, env={**SEARCH_ENV, "nnUNet_IAC_base": str(base)})
    workspace.run(*train, "-tr", RETRAIN, env={**RETRAIN_ENV, "nnUNet_IAC_base": str(base)})
    images = workspace.root / "raw" / DATASET / "imagesTs"
    predictions = tmp_path_factory.mktemp("resenc_predictions")
    workspace.run("nnUNetv2_predict", "-i", str(images), "-o", str(predictions), "-d", str(DATASET_ID),
                  "-c", CONFIGURATION, "-f", "0", "-tr", RETRAIN, "-p", plans, "-device", "cpu", "-npp", "1",
                  "-nps", "1", "--save_probabilities")
    folder = workspace.results
    return SimpleNamespace(plans=plans, base=base / "fold_0", images=images, predictions=predictions,
                           search=folder / f"{SEARCH}__{plans}__{CONFIGURATION}" / "fold_0",
                           model=folder / f"{RETRAIN}__{plans}__{CONFIGURATION}")


def test_the_base_was_trained_on_the_residual_encoder_plan(resenc, workspace):
    plans = json.loads((workspace.root / "preprocessed" / DATASET / f"{resenc.plans}.json").read_text())
    assert plans["configurations"][CONFIGURATION]["architecture"]["network_class_name"] == RESENC_CLASS
    init_args = safe_load(resenc.base / "checkpoint_final.pth")["init_args"]
    assert init_args["plans"]["plans_name"] == resenc.plans and init_args["configuration"] == CONFIGURATION


def test_search_and_retrain_put_cells_into_every_skip_of_the_frozen_resenc_base(resenc):
    search_weights = safe_load(resenc.search / "checkpoint_final.pth")["network_weights"]
    retrain_weights = safe_load(resenc.model / "fold_0" / "checkpoint_final.pth")["network_weights"]
    base_weights = safe_load(resenc.base / "checkpoint_final.pth")["network_weights"]
    levels = len({k.split(".")[2] for k in base_weights if k.startswith("decoder.stages.")})
    for weights in (search_weights, retrain_weights):
        assert {k.split(".")[2] for k in weights if k.startswith("decoder.iac_cells.")} == set(map(str, range(levels)))
        assert sorted(k for k in weights if is_base_key(k)) == sorted(base_weights)
        assert all(torch.equal(weights[k], base_weights[k]) for k in base_weights), "the base changed"
    assert any(k.startswith("encoder.stem.") for k in base_weights), "not a residual encoder"
    assert Genotype.load(resenc.model / "fold_0" / "genotype.json") == Genotype.load(resenc.search / "genotype.json")
    plans = json.loads((resenc.model / "plans.json").read_text())
    architecture = plans["configurations"][CONFIGURATION]["architecture"]
    assert architecture["network_class_name"] == CLASS_PATH
    assert architecture["arch_kwargs"]["iac_base_network_class_name"] == RESENC_CLASS


def test_predictor_rebuilds_the_resenc_encoder_with_discrete_cells(resenc, workspace, monkeypatch):
    predictor = load_predictor(workspace, monkeypatch, resenc.model)
    network = predictor.network
    network.load_state_dict(predictor.list_of_parameters[0])
    network.eval()
    assert isinstance(network.encoder, ResidualEncoder)
    assert isinstance(network.decoder, ImplantedUNetDecoder)
    assert len(network.decoder.iac_cells) == len(network.decoder.stages) > 0
    assert all(isinstance(cell, DiscreteCell) for cell in network.decoder.iac_cells)
    x = torch.randn(2, 1, *predictor.configuration_manager.patch_size)
    with torch.no_grad():
        reference = reference_network(workspace, resenc.model / "fold_0", CONFIGURATION, resenc.plans)
        assert torch.allclose(reference(x), network(x), atol=1e-6)


def test_nnunet_predict_gives_what_the_reference_network_predicts(resenc, workspace, monkeypatch):
    """nnUNetv2_predict's probabilities and segmentations equal nnU-Net's in-process prediction with the network
    rebuilt from the checkpoint, genotype and settings (same preprocessing, mirroring and export)."""
    predictor = load_predictor(workspace, monkeypatch, resenc.model)
    reference = reference_network(workspace, resenc.model / "fold_0", CONFIGURATION, resenc.plans)
    predictor.network, predictor.list_of_parameters = reference, [reference.state_dict()]
    inputs = sorted(resenc.images.glob("*_0000.nii.gz"))
    assert len(inputs) == 2
    expected = predictor.predict_from_files_sequential([[str(i)] for i in inputs], None, save_probabilities=True)
    for image_file, (segmentation, probabilities) in zip(inputs, expected):
        case = resenc.predictions / image_file.name.replace("_0000.nii.gz", "")
        image, written = sitk.ReadImage(str(image_file)), sitk.ReadImage(f"{case}.nii.gz")
        assert written.GetSize() == image.GetSize() and np.allclose(written.GetSpacing(), image.GetSpacing())
        assert set(np.unique(sitk.GetArrayFromImage(written))) <= {0, 1, 2}
        written_probabilities = np.load(f"{case}.npz")["probabilities"]
        assert np.allclose(written_probabilities, probabilities, atol=1e-5)
        disagree = sitk.GetArrayFromImage(written) != segmentation
        top_two = np.sort(probabilities, axis=0)[-2:]
        assert np.all(top_two[1][disagree] - top_two[0][disagree] < 1e-4), "segmentations differ beyond ties"
