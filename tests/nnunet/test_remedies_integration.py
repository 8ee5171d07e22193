"""nnUNet_IAC_retrain_base=decoder, nnUNet_IAC_init=gate and nnUNet_IAC_genotype_epoch through the real
nnUNetv2_train, and nnUNetv2_predict rebuilding the gated network from the model folder's plans. The genotype
records the cell options it was searched with (version 2): Stage III builds its cells with them."""
import copy
import json

import pytest
import torch

from nnunet_iac.nnunet.checkpointing import safe_load
from nnunet_iac.cells.genotype import Genotype
from nnunet_iac.cells.operations import search_space
from nnunet_iac.network.reference_networks import EXAMPLE_GENOTYPE_DICT
from nnunet_workspace import DATASET, DATASET_ID

pytestmark = pytest.mark.integration

TRAINER = "nnUNetTrainerIACRetrainRemedies"
BUDGET = {"nnUNet_IAC_epochs": "2", "nnUNet_IAC_iterations_per_epoch": "4", "nnUNet_IAC_val_iterations_per_epoch": "1",
          "nnUNet_IAC_retrain_validation": "0"}
SEARCHED = {"k": 2, "width_divisor": 2, "mode": "residual", "init": "zero"}


def search_folder(folder):
    """A search's genotype.json and search_history.json; epoch 0 differs from the final genotype."""
    folder.mkdir()
    rows = []
    for epoch in (0, 1):
        genotype = copy.deepcopy(EXAMPLE_GENOTYPE_DICT)
        genotype.update(version=2, cell_options=SEARCHED, search_space=list(search_space()))
        genotype["meta"] = {"spatial_dims": 2, "levels": 2, "epoch": epoch}
        if epoch == 0:
            genotype["nodes"][0][0]["op"] = "identity"
        rows.append({"epoch": epoch, "phase": "search", "genotype": genotype})
    (folder / "search_history.json").write_text(json.dumps(rows))
    (folder / "genotype.json").write_text(json.dumps(rows[-1]["genotype"]))
    return folder / "genotype.json", Genotype.from_dict(rows[0]["genotype"])


@pytest.fixture(scope="module")
def remedies(workspace, tmp_path_factory):
    base = workspace.train_base("2d")
    genotype_file, epoch_0 = search_folder(tmp_path_factory.mktemp("remedies") / "search")
    env = {**BUDGET, "nnUNet_IAC_base": str(base), "nnUNet_IAC_genotype": str(genotype_file),
           "nnUNet_IAC_genotype_epoch": "0", "nnUNet_IAC_init": "gate", "nnUNet_IAC_retrain_base": "decoder"}
    workspace.run("nnUNetv2_train", str(DATASET_ID), "2d", "0", "-tr", TRAINER, "-device", "cpu", env=env)
    model = workspace.results / f"{TRAINER}__nnUNetPlans__2d"
    return {"base": base, "model": model, "epoch_0": epoch_0, "env": env}


def test_plans_and_settings_record_the_remedies_and_the_genotype_epoch(remedies):
    arch = json.loads((remedies["model"] / "plans.json").read_text())["configurations"]["2d"]["architecture"]
    assert arch["arch_kwargs"]["iac_cell_options"] == {"k": 2, "width_divisor": 2, "mode": "residual",
                                                       "init": "gate", "levels": "all", "branching": "off"}
    used = Genotype.from_dict(arch["arch_kwargs"]["iac_genotype"])
    assert used == remedies["epoch_0"] and used.meta["genotype_epoch"] == 0
    assert Genotype.load(remedies["model"] / "fold_0" / "genotype.json") == remedies["epoch_0"]
    settings = json.loads((remedies["model"] / "fold_0" / "iac_settings.json").read_text())
    assert (settings["init"], settings["retrain_base"], settings["genotype_epoch"]) == ("gate", "decoder", 0)
    assert (settings["k"], settings["width_divisor"]) == (2, 2)
    assert settings["cell_options_from"].endswith("search_history.json")


def test_a_cell_option_that_contradicts_the_genotype_stops_the_retrain_before_it_writes(remedies, workspace):
    result = workspace.run("nnUNetv2_train", str(DATASET_ID), "2d", "1", "-tr", TRAINER, "-device", "cpu",
                           env={**remedies["env"], "nnUNet_IAC_width_divisor": "4"}, check=False)
    assert result.returncode != 0
    assert "nnUNet_IAC_width_divisor=4 contradicts" in result.stderr and "width_divisor=2" in result.stderr
    assert not (remedies["model"] / "fold_1").exists()


def test_decoder_policy_trains_gates_and_decoder_and_keeps_the_encoder(remedies):
    base = safe_load(remedies["base"] / "fold_0" / "checkpoint_final.pth")["network_weights"]
    checkpoint = safe_load(remedies["model"] / "fold_0" / "checkpoint_final.pth")
    weights = checkpoint["network_weights"]
    encoder = [k for k in base if k.startswith("encoder.")]
    assert encoder and all(torch.equal(weights[k], base[k]) for k in encoder)
    stages = [k for k in base if k.startswith("decoder.stages.") and k.endswith("conv.weight")]
    assert stages and all(not torch.equal(weights[k], base[k]) for k in stages)
    gates = [v for k, v in weights.items() if k.endswith("output_gate")]
    assert len(gates) == 2 and all(g.abs().item() > 0 for g in gates)
    cells, decoder = checkpoint["optimizer_state"]["param_groups"]
    assert decoder["initial_lr"] == pytest.approx(cells["initial_lr"] / 10)


def test_nnunet_predict_rebuilds_the_gated_network_from_plans(remedies, workspace, tmp_path):
    images = workspace.root / "raw" / DATASET / "imagesTs"
    out = tmp_path / "pred"
    workspace.run("nnUNetv2_predict", "-i", str(images), "-o", str(out), "-d", str(DATASET_ID), "-c", "2d",
                  "-f", "0", "-tr", TRAINER, "-device", "cpu", "-npp", "1", "-nps", "1", "--disable_tta")
    assert sorted(p.name for p in out.glob("*.nii.gz")) == sorted(
        p.name.replace("_0000.nii.gz", ".nii.gz") for p in images.glob("*_0000.nii.gz"))


def test_retrain_writes_signal_diagnostics_per_epoch(remedies):
    """Stage III's own signal rows (the gate is part of each level's projection group) and their plot."""
    folder = remedies["model"] / "fold_0"
    rows = json.loads((folder / "signal_history.json").read_text())
    assert [row["epoch"] for row in rows] == [0, 1]
    for row in rows:
        assert len(row["snr_projection"]) == 2 and all(s is not None and s > 0 for s in row["snr_projection"])
        assert len(row["projection_norm"]) == 2 and all(n > 0 for n in row["projection_norm"])
        assert row["train_loss"] is not None and "snr_alpha" not in row
    assert (folder / "signal.png").stat().st_size > 0
    assert "IAC retrain epoch 1: " in "".join(p.read_text() for p in folder.glob("training_log_*.txt"))
