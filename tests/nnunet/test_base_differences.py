"""The base checks with a base from another dataset (issue 36, adapting a model to a new site): accepted when the
target was preprocessed with the base's plans moved over, refused naming what differs and the fix otherwise."""
import copy
import re

import pytest

from nnunet_iac.nnunet.base_model import BaseModelError, check_base_matches

SOURCE, TARGET = "Dataset990_Fluorescence", "Dataset994_Brightfield"
LABELS = {"background": 0, "nucleus": 1, "membrane": 2}
UNET = "dynamic_network_architectures.architectures.unet.PlainConvUNet"


def source_plans(n_stages=3, spacing=(1.0, 1.0)) -> dict:
    return {
        "dataset_name": SOURCE, "plans_name": "nnUNetPlans", "image_reader_writer": "SimpleITKIO",
        "transpose_forward": [0, 1, 2],
        "foreground_intensity_properties_per_channel": {"0": {"mean": 1.2, "std": 0.7}},
        "configurations": {"2d": {
            "data_identifier": "nnUNetPlans_2d", "patch_size": [32, 32], "spacing": list(spacing),
            "normalization_schemes": ["ZScoreNormalization"], "use_mask_for_norm": [False],
            "architecture": {"network_class_name": UNET, "arch_kwargs": {
                "n_stages": n_stages, "features_per_stage": [8, 16, 32][:n_stages]}},
        }},
    }


def moved(plans: dict, target: str = TARGET, name: str = "nnUNetPlansFrom990") -> dict:
    """What nnUNetv2_move_plans_between_datasets writes for the target: the source's plans under the target's name,
    a new plans identifier and data identifier, the target's image reader."""
    plans = copy.deepcopy(plans)
    plans.update(dataset_name=target, plans_name=name, image_reader_writer="NibabelIO")
    for config in plans["configurations"].values():
        if "data_identifier" in config:
            config["data_identifier"] = name + config["data_identifier"][len("nnUNetPlans"):]
    return plans


def dataset(labels=LABELS, channel="fluorescence") -> dict:
    return {"channel_names": {"0": channel}, "labels": labels}


def base_checkpoint(plans=None) -> dict:
    return {"init_args": {"plans": plans or source_plans(), "configuration": "2d", "dataset_json": dataset()}}


def test_a_base_from_another_dataset_fits_the_moved_plans_and_other_channel_names(tmp_path):
    check_base_matches(base_checkpoint(), tmp_path / "checkpoint_final.pth", moved(source_plans()), "2d",
                       dataset(channel="brightfield"))


@pytest.mark.parametrize("labels, named", [
    ({"background": 0, "nucleus": 1}, "not in this dataset: membrane"),
    ({"background": 0, "nucleus": 1, "membrane": 2, "debris": 3}, "not in the base: debris"),
    ({"background": 0, "nucleus": 1, "cytoplasm": 2}, "not in this dataset: membrane; not in the base: cytoplasm"),
    ({"background": 0, "nucleus": 2, "membrane": 1}, "other values: nucleus (base 1, here 2), membrane (base 2, here 1)"),
])
def test_other_labels_are_refused_naming_them_and_the_fix(tmp_path, labels, named):
    path = tmp_path / "checkpoint_final.pth"
    with pytest.raises(BaseModelError, match=re.escape(named)) as refused:
        check_base_matches(base_checkpoint(), path, moved(source_plans()), "2d", dataset(labels))
    message = str(refused.value)
    assert str(path) in message and "segmentation head" in message and "nnUNet_IAC_base" in message


def test_own_plans_of_the_target_are_refused_naming_the_difference_and_the_move_plans_commands(tmp_path):
    """The target planned by itself: a deeper network at the same spacing, or the same network at another spacing
    (and other intensity statistics, from its own fingerprint)."""
    path = tmp_path / "checkpoint_final.pth"
    deeper = {**source_plans(n_stages=2), "dataset_name": TARGET}
    with pytest.raises(BaseModelError) as refused:
        check_base_matches(base_checkpoint(), path, deeper, "2d", dataset())
    message = str(refused.value)
    assert (f"plans 'nnUNetPlans' of {SOURCE} whose architecture settings features_per_stage, n_stages differ from "
            f"the current plans 'nnUNetPlans' of {TARGET}") in message
    assert ("nnUNetv2_move_plans_between_datasets -s 990 -t 994 -sp nnUNetPlans -tp nnUNetPlansFrom990, then "
            "nnUNetv2_preprocess -d 994 -plans_name nnUNetPlansFrom990 -c 2d, and pass -p nnUNetPlansFrom990") in message

    resampled = {**source_plans(spacing=(0.5, 0.5)), "dataset_name": TARGET,
                 "foreground_intensity_properties_per_channel": {"0": {"mean": 0.3, "std": 0.1}}}
    with pytest.raises(BaseModelError, match="whose preprocessing settings spacing, "
                                             "foreground_intensity_properties_per_channel differ.*move_plans"):
        check_base_matches(base_checkpoint(), path, resampled, "2d", dataset())


def test_a_base_of_the_same_dataset_is_compared_by_its_network_alone(tmp_path):
    """Other plans of the same dataset (e.g. ResEnc, or another spacing) keep the earlier rule: a refusal only for
    another network, and its fix does not send the user to move plans."""
    path = tmp_path / "checkpoint_final.pth"
    check_base_matches(base_checkpoint(), path, {**source_plans(spacing=(0.5, 0.5)), "plans_name": "Other"}, "2d")
    with pytest.raises(BaseModelError, match="whose architecture settings features_per_stage, n_stages differ") as e:
        check_base_matches(base_checkpoint(), path, source_plans(n_stages=2), "2d")
    assert "move_plans" not in str(e.value) and " of Dataset" not in str(e.value)


def test_inherited_configurations_are_compared_resolved(tmp_path):
    """3d_lowres-style configurations hold only what they change (``inherits_from``); the network they inherit is
    compared, where reading the configuration's own entry alone would find none and accept anything."""
    def with_child(plans):
        plans["configurations"]["child"] = {"inherits_from": "2d", "spacing": [2.0, 2.0]}
        return plans

    checkpoint = {"init_args": {"plans": with_child(source_plans()), "configuration": "child"}}
    check_base_matches(checkpoint, tmp_path / "c.pth", moved(with_child(source_plans())), "child")
    with pytest.raises(BaseModelError, match="architecture settings features_per_stage, n_stages"):
        check_base_matches(checkpoint, tmp_path / "c.pth", moved(with_child(source_plans(n_stages=2))), "child")
