"""Find, check and load the trained nnU-Net model (the base) that cells are implanted into.

The base is read by us, strictly and with ``map_location``: nnU-Net's ``load_pretrained_weights`` skips
the segmentation heads and assumes CUDA, and the cells must sit on exactly the network the user trained.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from nnunet_iac.nnunet.checkpointing import CheckpointReadError, safe_load
from nnunet_iac.network.implant import is_base_key
from nnunet_iac.nnunet.base_differences import (architecture_difference, label_difference, move_plans_fix,
                                                preprocessing_difference)

BASE_ENV = "nnUNet_IAC_base"
CHECKPOINT_NAME = "checkpoint_final.pth"


class BaseModelError(RuntimeError):
    """The base model is missing or does not match the current plans / configuration / network."""


def default_base_folder(results_dir: str, dataset_name: str, plans_name: str, configuration: str) -> Path:
    return Path(results_dir) / dataset_name / f"nnUNetTrainer__{plans_name}__{configuration}"


def resolve_base_checkpoint(default_folder: Path, fold, override: str = "") -> Path:
    """The base checkpoint file: ``nnUNet_IAC_base`` (file, trainer folder or fold folder) or the default."""
    hint = (f"Train the base first (nnUNetv2_train with the same dataset, plans and configuration), or set "
            f"{BASE_ENV} to the base's trainer output folder (the one holding fold_X) or to its "
            f"checkpoint file, e.g. export {BASE_ENV}=$nnUNet_results/DatasetXXX/nnUNetTrainer_250epochs__nnUNetPlans__2d"
            f" (a base from another dataset, when adapting a model to a new site, is always given this way).")
    if override:
        path = Path(override).expanduser()
        candidates = [path] if path.suffix == ".pth" else [path / f"fold_{fold}" / CHECKPOINT_NAME,
                                                          path / CHECKPOINT_NAME]
        origin = f"{BASE_ENV}={override}"
    else:
        candidates = [default_folder / f"fold_{fold}" / CHECKPOINT_NAME]
        origin = "the default location"
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    expected = " or ".join(str(c) for c in candidates)
    raise BaseModelError(f"No trained base model found: expected {expected} (from {origin}). {hint}")


def read_base_checkpoint(path: Path) -> dict[str, Any]:
    try:
        checkpoint = safe_load(path)
    except CheckpointReadError as e:
        raise BaseModelError(f"Cannot read the base checkpoint: {e} Point {BASE_ENV} at an intact "
                             f"nnU-Net checkpoint_final.pth.") from e
    if not isinstance(checkpoint, dict) or "network_weights" not in checkpoint:
        raise BaseModelError(f"{path} is not an nnU-Net training checkpoint (no 'network_weights'). Point "
                             f"{BASE_ENV} at the checkpoint_final.pth written by nnUNetv2_train.")
    return checkpoint


def _channels_and_labels(dataset_json: dict) -> tuple[int, dict]:
    channels = dataset_json.get("channel_names", dataset_json.get("modality", {}))
    return len(channels), dataset_json.get("labels", {})


def check_base_dataset(checkpoint: dict, path: Path, dataset_json: dict) -> None:
    """Refuse a base trained with other input channels or other labels than this dataset has. Channel names may
    differ (a new site may image otherwise); label names and values may not: the cells keep the base's
    segmentation head, whose outputs are the base's classes."""
    theirs = (checkpoint.get("init_args") or {}).get("dataset_json")
    if not theirs:
        return
    (their_channels, their_labels), (our_channels, our_labels) = map(_channels_and_labels, (theirs, dataset_json))
    if their_channels != our_channels:
        raise BaseModelError(f"The base {path} was trained with {their_channels} input channels; this dataset has "
                             f"{our_channels}. Point {BASE_ENV} at a base trained with {our_channels} input channels.")
    if their_labels != our_labels:
        raise BaseModelError(
            f"The base {path} was trained for the labels {their_labels}; this dataset has {our_labels} "
            f"({label_difference(their_labels, our_labels)}). The cells keep the base's segmentation head, so "
            f"the labels must be the base's, same names and values: point {BASE_ENV} at a base trained for these "
            f"labels, or give this dataset the base's labels (dataset.json and segmentations) and preprocess it "
            f"again.")


def check_base_matches(checkpoint: dict, path: Path, plans: dict, configuration: str,
                       dataset_json: dict | None = None) -> None:
    """Refuse a base trained on other plans, configuration, input channels or classes, naming what differs.
    A base from another dataset must also have been trained on images resampled and normalized as this
    dataset's are, which its plans, moved to this dataset, give (``base_differences``)."""
    if dataset_json is not None:
        check_base_dataset(checkpoint, path, dataset_json)
    init_args = checkpoint.get("init_args") or {}
    base_plans, base_config = init_args.get("plans"), init_args.get("configuration")
    fix = (f"Use the base trained with the same plans and configuration, or set {BASE_ENV} to it "
           f"(or pass the matching -p / configuration to nnUNetv2_train).")
    if base_config is not None and base_config != configuration:
        raise BaseModelError(f"The base {path} was trained for configuration '{base_config}', not "
                             f"'{configuration}'. {fix}")
    if base_plans is None:
        return
    source, target = base_plans.get("dataset_name"), plans.get("dataset_name")
    other_dataset = bool(source and target and source != target)
    compared = (base_plans, base_config or configuration, plans, configuration)
    differences = [architecture_difference(*compared)]
    if other_dataset:
        differences.append(preprocessing_difference(*compared))
        fix = move_plans_fix(source, target, base_plans.get("plans_name"), configuration)
    what = " and ".join(d for d in differences if d)
    if what:
        theirs, ours = (f" of {source}", f" of {target}") if other_dataset else ("", "")
        raise BaseModelError(f"The base {path} was trained with plans '{base_plans.get('plans_name')}'{theirs} "
                             f"whose {what} differ from the current plans '{plans.get('plans_name')}'{ours}. {fix}")


def _strip_wrappers(key: str) -> str:
    for prefix in ("module.", "_orig_mod."):
        while key.startswith(prefix):
            key = key[len(prefix):]
    return key


def load_base_weights(network: nn.Module, weights: dict[str, torch.Tensor], source: Path) -> None:
    """Load every base tensor, strictly: same keys, same shapes; cell tensors are left as they are."""
    weights = {_strip_wrappers(k): v for k, v in weights.items()}
    own = {k: v for k, v in network.state_dict().items() if is_base_key(k)}
    missing = sorted(set(own) - set(weights))
    unexpected = sorted(set(weights) - set(own))
    mismatched = sorted(k for k in set(own) & set(weights) if own[k].shape != weights[k].shape)
    if missing or unexpected or mismatched:
        details = []
        if mismatched:
            k = mismatched[0]
            details.append(f"{len(mismatched)} tensors differ in shape (e.g. {k}: base {tuple(weights[k].shape)}, "
                           f"expected {tuple(own[k].shape)}; other input channels or classes?)")
        if missing:
            details.append(f"{len(missing)} expected tensors are missing (e.g. {missing[0]})")
        if unexpected:
            details.append(f"{len(unexpected)} tensors are not in this network (e.g. {unexpected[0]})")
        raise BaseModelError(f"The base {source} does not fit the network of the current plans: "
                             f"{'; '.join(details)}. Point {BASE_ENV} at a base trained on this dataset with these "
                             f"plans and this configuration.")
    result = network.load_state_dict(weights, strict=False)
    assert not result.unexpected_keys and all(not is_base_key(k) for k in result.missing_keys)
