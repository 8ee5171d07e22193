"""The summary's base column when the base was trained on another dataset (adapting to a new site, issue 36)."""
import json

from nnunet_iac.cells.genotype import Genotype
from nnunet_iac.network.reference_networks import EXAMPLE_GENOTYPE_DICT
from nnunet_iac.tools.summary import FoldResult, Summary, _other_base_dataset


def base_fold(root, dataset):
    fold = root / dataset / "nnUNetTrainer__nnUNetPlans__2d" / "fold_0"
    fold.mkdir(parents=True)
    (fold.parent / "plans.json").write_text(json.dumps({"dataset_name": dataset}))
    return fold


def test_a_base_of_another_dataset_is_named_and_one_of_this_dataset_or_outside_a_model_folder_is_not(tmp_path):
    assert _other_base_dataset(base_fold(tmp_path, "Dataset990_Source"), "Dataset994_Target") == "Dataset990_Source"
    assert _other_base_dataset(base_fold(tmp_path, "Dataset994_Target"), "Dataset994_Target") is None
    assert _other_base_dataset(tmp_path / "copied_checkpoint_folder", "Dataset994_Target") is None


def test_the_table_shows_no_base_dice_for_it_and_says_how_to_get_a_comparable_one(tmp_path):
    fold = base_fold(tmp_path, "Dataset990_Source")
    summary = Summary("Dataset994_Target", "2d", Genotype.from_dict(EXAMPLE_GENOTYPE_DICT), 1000, 10,
                      [FoldResult("0", fold, {}, {"mean": 0.8}, base_dataset="Dataset990_Source")])
    table = summary.markdown()
    assert "| 0 | mean | n/a | 0.8000 | n/a |" in table
    assert (f"Fold 0: the base ({fold}) was validated on Dataset990_Source, not on this dataset's cases" in table
            and f"-m {fold.parent} -f 0" in table)
