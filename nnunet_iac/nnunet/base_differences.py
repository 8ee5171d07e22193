"""What differs between the base's plans and labels and the current ones, named for the base checks' messages.

A base from another dataset (adapting a model to a new site) fits when the target was preprocessed with the
base's own plans, moved over with ``nnUNetv2_move_plans_between_datasets`` as nnU-Net's fine-tuning guide does:
then the architecture and how the images are resampled and normalized are the base's. ``move_plans_fix`` spells
out those commands for the error that finds them missing.
"""
from __future__ import annotations

import re

from nnunet_iac.network.implanted_network import base_architecture_of

#: configuration entries that decide how images are resampled and normalized before the network sees them
CONFIGURATION_PREPROCESSING = ("spacing", "normalization_schemes", "use_mask_for_norm")
#: plans entries that do the same for every configuration (the intensity statistics set CT normalization's clipping)
PLANS_PREPROCESSING = ("transpose_forward", "foreground_intensity_properties_per_channel")


def resolved_configuration(plans: dict, name: str) -> dict:
    """The configuration with what it inherits (``inherits_from``) filled in, as nnU-Net's PlansManager resolves it;
    {} when the plans lack it (a base check then has nothing to compare)."""
    config = dict(plans.get("configurations", {}).get(name, {}))
    parent = config.pop("inherits_from", None)
    return {**resolved_configuration(plans, parent), **config} if parent else config


def architecture_difference(base_plans: dict, base_configuration: str, plans: dict, configuration: str) -> str:
    """'network class' or 'architecture settings <keys>' when the base's network differs from the current plans'
    (cells implanted by the retrain's plans are not a difference); '' when they match or one is not planned."""
    theirs = resolved_configuration(base_plans, base_configuration).get("architecture")
    ours = resolved_configuration(plans, configuration).get("architecture")
    if theirs is None or ours is None:
        return ""
    ours = base_architecture_of(ours)
    if ours.get("network_class_name") != theirs.get("network_class_name"):
        return "network class"
    differing = differing_keys(theirs.get("arch_kwargs", {}), ours.get("arch_kwargs", {}))
    return "architecture settings " + ", ".join(differing) if differing else ""


def preprocessing_difference(base_plans: dict, base_configuration: str, plans: dict, configuration: str) -> str:
    """'preprocessing settings <keys>' when the current plans resample or normalize otherwise than the base's."""
    theirs, ours = (resolved_configuration(p, c) for p, c in ((base_plans, base_configuration), (plans, configuration)))
    differing = [k for k in CONFIGURATION_PREPROCESSING if theirs.get(k) != ours.get(k)]
    differing += [k for k in PLANS_PREPROCESSING if base_plans.get(k) != plans.get(k)]
    return "preprocessing settings " + ", ".join(differing) if differing else ""


def differing_keys(theirs: dict, ours: dict) -> list[str]:
    return sorted(k for k in set(theirs) | set(ours) if theirs.get(k) != ours.get(k))


def label_difference(theirs: dict, ours: dict) -> str:
    """Which labels differ, by name: missing here, only here, or with another value."""
    parts = []
    missing = [k for k in theirs if k not in ours]
    extra = [k for k in ours if k not in theirs]
    other = [f"{k} (base {theirs[k]}, here {ours[k]})" for k in theirs if k in ours and theirs[k] != ours[k]]
    for what, names in (("not in this dataset", missing), ("not in the base", extra), ("other values", other)):
        if names:
            parts.append(f"{what}: {', '.join(names)}")
    return "; ".join(parts)


def _dataset_id(dataset_name: str) -> str:
    """``Dataset990_Name`` -> ``990``, as nnUNetv2_preprocess -d takes it; other names stay as they are."""
    match = re.match(r"Dataset(\d+)_", dataset_name)
    return str(int(match.group(1))) if match else dataset_name


def move_plans_fix(source: str, target: str, source_plans: str, configuration: str) -> str:
    """The commands that preprocess ``target`` with the plans the base was trained with on ``source``."""
    source_id, target_id = _dataset_id(source), _dataset_id(target)
    moved = f"{source_plans}From{source_id}"
    return (f"A base from another dataset needs this dataset preprocessed with the base's plans: "
            f"nnUNetv2_move_plans_between_datasets -s {source_id} -t {target_id} -sp {source_plans} -tp {moved}, "
            f"then nnUNetv2_preprocess -d {target_id} -plans_name {moved} -c {configuration}, and pass -p {moved} "
            f"to nnUNetv2_train and nnUNetv2_predict.")
