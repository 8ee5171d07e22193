"""Trainer variants the nnU-Net way (issue 15): setting defaults in code, another search strategy in a subclass,
and a retrain that finds a variant's search. Unit level: no nnU-Net training."""
import pytest
import torch
from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer

from nnunet_iac.cells.genotype import GenotypeError
from nnunet_iac.network.reference_networks import tiny_plain_unet
from nnunet_iac.nnunet.retrain_setup import find_search_genotype
from nnunet_iac.nnunet.search_trainer import IACSearchTrainer, StrategyMismatch
from nnunet_iac.nnunet.settings import PREFIX, IACSettings, SettingsError
from nnunet_iac.search.history import SearchHistory
from nnunet_iac.search.pc_darts import PCDartsStrategy
from nnunet_iac.trainers.nnUNetTrainerIACSearch import nnUNetTrainerIACSearch
from nnunet_iac.trainers.nnUNetTrainerIACSearch_50epochs import nnUNetTrainerIACSearch_50epochs


@pytest.fixture(autouse=True)
def _no_iac_variables(monkeypatch):
    import os
    for name in [n for n in os.environ if n.startswith(PREFIX)]:
        monkeypatch.delenv(name)


class Short(nnUNetTrainerIACSearch):
    iac_defaults = {"epochs": 50, "k": 2}


class Shorter(Short):
    iac_defaults = {"epochs": 10}


def test_defaults_merge_along_the_class_hierarchy_and_variables_override_them(monkeypatch):
    assert Shorter.settings_defaults() == {"epochs": 10, "k": 2}
    settings = Shorter.read_settings()
    assert (settings.epochs, settings.k, settings.warmup_epochs) == (10, 2, IACSettings().warmup_epochs)
    monkeypatch.setenv(PREFIX + "epochs", "3")
    assert Shorter.read_settings().epochs == 3 and Shorter.read_settings().k == 2
    assert nnUNetTrainerIACSearch.read_settings().epochs == 3  # the variable reaches every trainer alike


def test_the_shipped_variant_searches_a_quarter_of_the_default():
    settings = nnUNetTrainerIACSearch_50epochs.read_settings()
    assert (settings.epochs, settings.warmup_epochs, settings.stable_epochs) == (50, 5, 10)
    assert nnUNetTrainerIACSearch.read_settings().epochs == IACSettings().epochs


def test_a_bad_variant_default_names_the_class_and_the_setting():
    class Typo(nnUNetTrainerIACSearch):
        iac_defaults = {"epoch": 5}

    class WrongType(nnUNetTrainerIACSearch):
        iac_defaults = {"epochs": "5"}

    with pytest.raises(SettingsError, match=r"Typo.iac_defaults names epoch, which is not a setting"):
        Typo.read_settings()
    with pytest.raises(SettingsError, match=r"WrongType.iac_defaults sets epochs='5'; it must be an integer"):
        WrongType.read_settings()


class RecordingStrategy(PCDartsStrategy):
    """PC-DARTS under another name that remembers the cell options it built the supernet with."""
    name = "recording"
    built_with = []

    @staticmethod
    def build_supernet(base, options):
        RecordingStrategy.built_with.append(options)
        return PCDartsStrategy.build_supernet(base, options)


class WideRecordingSearch(nnUNetTrainerIACSearch):
    search_strategy_class = RecordingStrategy
    iac_defaults = {"width_divisor": 1}


def test_a_variant_changes_the_strategy_and_the_supernet_without_touching_the_trainer(monkeypatch):
    """nnU-Net builds the network from the trainer class (the predictor too): the class's strategy and defaults
    must reach it."""
    monkeypatch.setattr(nnUNetTrainer, "build_network_architecture",
                        staticmethod(lambda *args, **kwargs: tiny_plain_unet(2, deep_supervision=False)))
    network = WideRecordingSearch.build_network_architecture(None, None, 1, 3, False)
    assert RecordingStrategy.built_with[-1].width_divisor == 1
    assert network.decoder.iac_cells[0].width == 32  # the 32 skip channels of level 0 at full width (divisor 4: 8)
    assert isinstance(WideRecordingSearch.__new__(WideRecordingSearch), IACSearchTrainer)


def _bare(trainer_class, strategy):
    trainer = trainer_class.__new__(trainer_class)
    trainer.iac_settings = trainer_class.read_settings()
    trainer.strategy = strategy
    trainer.strategy.optimizer = torch.optim.Adam([torch.nn.Parameter(torch.ones(3))], lr=0.5)
    trainer.strategy.grad_scaler = None
    trainer.history, trainer.search_split = SearchHistory(), None
    return trainer


def test_checkpoints_name_their_strategy_and_older_ones_still_continue():
    saved = _bare(nnUNetTrainerIACSearch, PCDartsStrategy())
    saved.strategy.optimizer.param_groups[0]["lr"] = 0.123
    state = saved.iac_state()
    assert state["strategy"]["name"] == "pc_darts"
    resumed = _bare(nnUNetTrainerIACSearch, PCDartsStrategy())
    resumed.restore_iac_state(state)
    assert resumed.strategy.optimizer.param_groups[0]["lr"] == 0.123
    before_seam = {"settings": {}, "arch_optimizer_state": state["strategy"]["state"]["arch_optimizer_state"],
                   "arch_grad_scaler_state": None, "history": [], "search_split": None}
    old = _bare(nnUNetTrainerIACSearch, PCDartsStrategy())
    old.restore_iac_state(before_seam)
    assert old.strategy.optimizer.param_groups[0]["lr"] == 0.123
    other = _bare(WideRecordingSearch, RecordingStrategy())
    with pytest.raises(StrategyMismatch, match=r"strategy 'pc_darts'.*searches with 'recording'"):
        other.restore_iac_state(state)


def _genotype_file(results, trainer, fold=0):
    path = results / "Dataset1_X" / f"{trainer}__nnUNetPlans__2d" / f"fold_{fold}" / "genotype.json"
    path.parent.mkdir(parents=True)
    path.write_text("{}")
    return path


def test_the_retrain_finds_the_search_that_was_run(tmp_path):
    args = (str(tmp_path), "Dataset1_X", "nnUNetPlans", "2d", 0)
    missing = find_search_genotype(*args)
    assert missing.parts[-3:] == ("nnUNetTrainerIACSearch__nnUNetPlans__2d", "fold_0", "genotype.json")
    variant = _genotype_file(tmp_path, "nnUNetTrainerIACSearch_50epochs")
    assert find_search_genotype(*args) == variant
    _genotype_file(tmp_path, "nnUNetTrainerIACSearch_mine")
    with pytest.raises(GenotypeError, match="nnUNetTrainerIACSearch_50epochs, nnUNetTrainerIACSearch_mine"):
        find_search_genotype(*args)
    default = _genotype_file(tmp_path, "nnUNetTrainerIACSearch")
    assert find_search_genotype(*args) == default
    assert find_search_genotype(*args, search_trainer="nnUNetTrainerIACSearch_mine").parent.parent.name == \
        "nnUNetTrainerIACSearch_mine__nnUNetPlans__2d"


@pytest.mark.integration
def test_the_shipped_variant_runs_through_nnunet_and_its_retrain_finds_its_genotype(workspace):
    """nnU-Net finds the variant by name, its defaults reach iac_settings.json (variables still win), and the
    plain retrain takes its genotype without nnUNet_IAC_genotype. Its own plans name (a copy of nnUNetPlans)
    keeps this fold's searches apart from the other tests'."""
    import json
    from pathlib import Path

    from nnunet_iac.nnunet.checkpointing import safe_load
    from nnunet_workspace import DATASET, DATASET_ID

    preprocessed = Path(workspace.env["nnUNet_preprocessed"]) / DATASET
    plans = json.loads((preprocessed / "nnUNetPlans.json").read_text())
    (preprocessed / "nnUNetPlansVariant.json").write_text(json.dumps({**plans, "plans_name": "nnUNetPlansVariant"}))
    base = workspace.train_base("2d")
    env = {"nnUNet_IAC_base": str(base), "nnUNet_IAC_epochs": "2", "nnUNet_IAC_warmup_epochs": "1",
           "nnUNet_IAC_iterations_per_epoch": "2", "nnUNet_IAC_val_iterations_per_epoch": "1",
           "nnUNet_IAC_search_validation": "0", "nnUNet_IAC_retrain_validation": "0"}
    workspace.run("nnUNetv2_train", str(DATASET_ID), "2d", "0", "-tr", "nnUNetTrainerIACSearch_50epochs",
                  "-p", "nnUNetPlansVariant", "-device", "cpu", env=env)
    search = workspace.results / "nnUNetTrainerIACSearch_50epochs__nnUNetPlansVariant__2d" / "fold_0"
    settings = json.loads((search / "iac_settings.json").read_text())
    assert (settings["epochs"], settings["stable_epochs"]) == (2, 10)  # variable over variant, variant over default
    assert safe_load(search / "checkpoint_final.pth")["iac"]["strategy"]["name"] == "pc_darts"
    workspace.run("nnUNetv2_train", str(DATASET_ID), "2d", "0", "-tr", "nnUNetTrainerIACRetrain",
                  "-p", "nnUNetPlansVariant", "-device", "cpu", env=env)
    retrained = workspace.results / "nnUNetTrainerIACRetrain__nnUNetPlansVariant__2d" / "fold_0"
    assert json.loads((retrained / "genotype.json").read_text())["nodes"] == \
        json.loads((search / "genotype.json").read_text())["nodes"]
    assert str(search / "genotype.json") in (retrained / "iac_settings.json").read_text()


def test_the_no_augmentation_variants_take_nnunets_noda_hooks_and_pair_with_each_other():
    """nnU-Net's NoDA transforms (for both search loaders) and no mirroring; the retrain's default genotype is the
    no-augmentation search's. Without NoDA in the bases, the transforms would be nnUNetTrainer's own."""
    from nnunetv2.training.nnUNetTrainer.variants.data_augmentation.nnUNetTrainerNoDA import nnUNetTrainerNoDA

    from nnunet_iac.trainers.nnUNetTrainerIACRetrain_noDA import nnUNetTrainerIACRetrain_noDA
    from nnunet_iac.trainers.nnUNetTrainerIACSearch_noDA import nnUNetTrainerIACSearch_noDA

    for variant in (nnUNetTrainerIACSearch_noDA, nnUNetTrainerIACRetrain_noDA):
        assert variant.get_training_transforms is nnUNetTrainerNoDA.get_training_transforms
        hook = variant.configure_rotation_dummyDA_mirroring_and_inital_patch_size
        assert hook is nnUNetTrainerNoDA.configure_rotation_dummyDA_mirroring_and_inital_patch_size
    assert nnUNetTrainerIACRetrain_noDA.search_trainer_name == "nnUNetTrainerIACSearch_noDA"
    assert nnUNetTrainerIACSearch_noDA.build_network_architecture.__func__ is \
        nnUNetTrainerIACSearch.build_network_architecture.__func__
