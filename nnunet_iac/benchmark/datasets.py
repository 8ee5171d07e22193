"""The benchmark's data: the input folder into nnU-Net raw format, the test set, the validation cases.

Two input layouts: a Medical Segmentation Decathlon task folder (``TaskNN_Name`` with imagesTr/,
labelsTr/ and an MSD dataset.json), converted by ``nnUNetv2_convert_MSD_dataset``; or an nnU-Net v2 raw
folder (``DatasetNNN_Name`` with imagesTr/, labelsTr/ and a v2 dataset.json), linked file by file so
the source is never written to. Without a separate labelled test set, a seeded set of labelled cases
is moved out of the raw folder *before* planning: nnU-Net never sees them for fingerprint, planning,
training or validation, and they become the test set.
"""
from __future__ import annotations

import json
import os
import random
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

DECATHLON_NAME = re.compile(r"^Task(\d{2,3})_(\w+)$")
RAW_NAME = re.compile(r"^Dataset(\d{3})_(\w+)$")
LAYOUT_HELP = ("Pass a Medical Segmentation Decathlon task folder (TaskNN_Name holding imagesTr/, labelsTr/ and "
               "dataset.json, e.g. ../shared/data/Task04_Hippocampus) or an nnU-Net v2 raw folder "
               "(DatasetNNN_Name holding imagesTr/, labelsTr/ and dataset.json with channel_names and "
               "file_ending, e.g. ../shared/data/Dataset902_DSB2018Nuclei).")


class DatasetError(ValueError):
    """The input folders cannot be used; the message names the problem and the fix."""


@dataclass(frozen=True)
class DatasetSource:
    folder: Path
    layout: str  # "decathlon" or "nnunet_raw"
    dataset_id: int
    name: str  # the nnU-Net dataset name the benchmark works with, e.g. Dataset004_Hippocampus


@dataclass(frozen=True)
class CaseSet:
    """Images in nnU-Net's input naming (CASE_0000.ext) and their labels (CASE.ext)."""
    name: str
    images: Path
    labels: Path
    cases: tuple[str, ...]


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise DatasetError(f"Cannot read {path}: {e}. {LAYOUT_HELP}") from e


def identify(folder: str | Path) -> DatasetSource:
    """Which layout ``folder`` has; a clear error when it has neither."""
    folder = Path(folder).expanduser().resolve()
    if not folder.is_dir():
        raise DatasetError(f"Dataset folder {folder} does not exist. {LAYOUT_HELP}")
    missing = [p for p in ("imagesTr", "labelsTr", "dataset.json") if not (folder / p).exists()]
    if missing:
        raise DatasetError(f"{folder} has no {', '.join(missing)}, so it is neither a Decathlon task nor an "
                           f"nnU-Net raw folder. {LAYOUT_HELP}")
    dataset_json = _read_json(folder / "dataset.json")
    decathlon, raw = DECATHLON_NAME.match(folder.name), RAW_NAME.match(folder.name)
    if decathlon and "training" in dataset_json and "modality" in dataset_json:
        task_id = int(decathlon.group(1))
        return DatasetSource(folder, "decathlon", task_id, f"Dataset{task_id:03d}_{decathlon.group(2)}")
    if raw and "channel_names" in dataset_json and "file_ending" in dataset_json:
        return DatasetSource(folder, "nnunet_raw", int(raw.group(1)), folder.name)
    raise DatasetError(f"{folder} is named '{folder.name}' and its dataset.json has keys "
                       f"{sorted(dataset_json)}: that is neither a Decathlon task (TaskNN_Name, 'training' and "
                       f"'modality' keys) nor an nnU-Net v2 raw folder (DatasetNNN_Name, 'channel_names' and "
                       f"'file_ending' keys). {LAYOUT_HELP}")


def channel_count(dataset_json: dict) -> int:
    return len(dataset_json.get("channel_names") or dataset_json.get("modality") or {})


def case_ids(labels: Path, file_ending: str) -> list[str]:
    return sorted(p.name[:-len(file_ending)] for p in labels.iterdir()
                  if p.name.endswith(file_ending) and not p.name.startswith((".", "_")))


def image_names(case: str, channels: int, file_ending: str) -> list[str]:
    return [f"{case}_{c:04d}{file_ending}" for c in range(channels)]


def check_test_set(images: str | None, labels: str | None, file_ending: str, channels: int) -> CaseSet | None:
    """The separate labelled test set, if given: both folders, and every label with all its images."""
    if images is None and labels is None:
        return None
    if images is None or labels is None:
        given, missing = ("--test-images", "--test-labels") if images else ("--test-labels", "--test-images")
        raise DatasetError(f"{given} was given without {missing}: the test set must be labelled to be evaluated. "
                           f"Pass both, or neither (then labelled cases are held out as the test set).")
    images_dir, labels_dir = Path(images).expanduser().resolve(), Path(labels).expanduser().resolve()
    for flag, folder in (("--test-images", images_dir), ("--test-labels", labels_dir)):
        if not folder.is_dir():
            raise DatasetError(f"{flag} {folder} does not exist or is not a folder.")
    cases = case_ids(labels_dir, file_ending)
    if not cases:
        raise DatasetError(f"--test-labels {labels_dir} holds no label files ending in {file_ending} (the "
                           f"dataset's file_ending). Labels are named CASE{file_ending}.")
    missing = [name for case in cases for name in image_names(case, channels, file_ending)
               if not (images_dir / name).is_file()]
    if missing:
        raise DatasetError(f"--test-images {images_dir} lacks {len(missing)} image file(s) for the labels in "
                           f"{labels_dir}, e.g. {missing[0]}. Images need nnU-Net's naming CASE_0000{file_ending} "
                           f"(one file per channel), labels CASE{file_ending}.")
    return CaseSet("test", images_dir, labels_dir, tuple(cases))


def link_decathlon_input(source: Path, folder: Path) -> Path:
    """The Decathlon task as the converter needs it: with an imagesTs/ (empty if the source has none)."""
    if (source / "imagesTs").is_dir():
        return source
    target = folder / source.name
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    for part in ("imagesTr", "labelsTr", "dataset.json"):
        (target / part).symlink_to(source / part)
    (target / "imagesTs").mkdir()
    return target


def link_raw_dataset(source: Path, target: Path) -> None:
    """Training images and labels linked one by one (the source stays untouched), dataset.json copied."""
    if target.exists():
        shutil.rmtree(target)
    for part in ("imagesTr", "labelsTr"):
        (target / part).mkdir(parents=True)
        for f in sorted((source / part).iterdir()):
            if not f.name.startswith("."):
                (target / part / f.name).symlink_to(f.resolve())
    shutil.copyfile(source / "dataset.json", target / "dataset.json")


def hold_out_test_set(raw_dataset: Path, count: int, seed: int, destination: Path) -> CaseSet:
    """Move ``count`` seeded labelled cases out of the raw dataset into ``destination`` (images/, labels/)."""
    dataset_json = json.loads((raw_dataset / "dataset.json").read_text())
    ending, channels = dataset_json["file_ending"], channel_count(dataset_json)
    cases = case_ids(raw_dataset / "labelsTr", ending)
    if not 0 < count < len(cases) - 5:
        raise DatasetError(f"Cannot hold out {count} of the {len(cases)} labelled cases of {raw_dataset.name} as "
                           f"the test set (nnU-Net's 5 folds need cases left). Choose --holdout between 1 and "
                           f"{len(cases) - 6}, or pass a separate test set with --test-images/--test-labels.")
    chosen = sorted(random.Random(seed).sample(cases, count))
    images, labels = destination / "images", destination / "labels"
    images.mkdir(parents=True, exist_ok=True)
    labels.mkdir(parents=True, exist_ok=True)
    for case in chosen:
        for name in image_names(case, channels, ending):
            shutil.move(str(raw_dataset / "imagesTr" / name), str(images / name))
        shutil.move(str(raw_dataset / "labelsTr" / f"{case}{ending}"), str(labels / f"{case}{ending}"))
    dataset_json["numTraining"] = len(cases) - count
    (raw_dataset / "dataset.json").write_text(json.dumps(dataset_json, indent=2))
    (destination / "cases.json").write_text(json.dumps({"seed": seed, "held_out_of": len(cases),
                                                        "cases": chosen}, indent=2))
    return CaseSet("test", images, labels, tuple(chosen))


def held_out_set(destination: Path) -> CaseSet:
    """The test set an earlier (resumed) run held out."""
    cases = json.loads((destination / "cases.json").read_text())["cases"]
    return CaseSet("test", destination / "images", destination / "labels", tuple(cases))


def validation_cases(preprocessed_dataset: Path, fold: int) -> list[str]:
    splits = preprocessed_dataset / "splits_final.json"
    if not splits.is_file():
        raise DatasetError(f"{splits} is missing; nnU-Net writes it when the first training of the dataset "
                           f"starts (the base arm).")
    return sorted(json.loads(splits.read_text())[fold]["val"])


def link_case_set(name: str, raw_dataset: Path, cases: list[str], destination: Path) -> CaseSet:
    """Link the given training cases' images and labels into ``destination`` (images/, labels/)."""
    dataset_json = json.loads((raw_dataset / "dataset.json").read_text())
    ending, channels = dataset_json["file_ending"], channel_count(dataset_json)
    images, labels = destination / "images", destination / "labels"
    for folder in (images, labels):
        if folder.exists():
            shutil.rmtree(folder)
        folder.mkdir(parents=True)
    for case in cases:
        for image in image_names(case, channels, ending):
            (images / image).symlink_to(os.path.realpath(raw_dataset / "imagesTr" / image))
        (labels / f"{case}{ending}").symlink_to(os.path.realpath(raw_dataset / "labelsTr" / f"{case}{ending}"))
    return CaseSet(name, images, labels, tuple(cases))
