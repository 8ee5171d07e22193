"""Two nnU-Net datasets from one: the source domain and the target domain of an adaptation experiment.

The adaptation question (issue 36) is asked the way nnU-Net users meet it: a model trained on one dataset (the
source: one site, scanner or stain) and a second dataset from the new site (the target), few of whose cases are
labelled for training. Where one labelled dataset holds both domains (DSB2018's ``domains.tsv``: fluorescence and
brightfield), this splits it into two nnU-Net raw datasets by a column of a case table: every source case in the
source's imagesTr, the target's cases in the target's imagesTr (its training pool, from which the few-shot
support sets are drawn) except a seeded, fixed test set in the target's imagesTs/labelsTs.

Files are linked, never copied or written to: the shared data stays as it is and nothing enters the project.
``split.json`` in each new folder records what was split how; a second call with the same arguments reuses the
folders, one with other arguments is refused rather than mixing two splits.
"""
from __future__ import annotations

import csv
import json
import os
import random
import re
from dataclasses import asdict, dataclass
from pathlib import Path

from nnunet_iac.benchmark.datasets import DatasetError, case_ids, channel_count, identify, image_names

SPLIT_FILE = "split.json"


@dataclass(frozen=True)
class DomainSplit:
    """What was split: recorded in both datasets' ``split.json``."""
    raw: str
    domains: str
    column: str
    source_value: str
    target_value: str
    source_id: int
    target_id: int
    target_test: int
    seed: int


def read_domains(table: Path, column: str) -> dict[str, str]:
    """Case -> value of ``column`` from a tab-separated table with a ``case`` column."""
    try:
        with open(table, newline="") as f:
            rows = list(csv.DictReader(f, delimiter="\t"))
    except OSError as e:
        raise DatasetError(f"Cannot read the domain table {table}: {e}.") from e
    if not rows or "case" not in rows[0] or column not in rows[0]:
        columns = ", ".join(rows[0]) if rows else "none"
        raise DatasetError(f"The domain table {table} needs a 'case' column and a '{column}' column (tab-separated); "
                           f"it has: {columns}. Choose the column with --column.")
    return {row["case"]: row[column] for row in rows}


def _name(stem: str, column: str, value: str) -> str:
    """``DSB2018Nuclei_fluorescence``; a value that is not a word gets its column: ``..._original_was_colour1``."""
    suffix = value if re.fullmatch(r"[A-Za-z]\w*", value) else f"{column}{value}"
    return f"{stem}_{re.sub(r'[^0-9A-Za-z_]', '', suffix)}"


def _link_cases(raw: Path, cases: list[str], images: Path, labels: Path, channels: int, ending: str) -> None:
    images.mkdir(parents=True)
    labels.mkdir(parents=True)
    for case in cases:
        for name in image_names(case, channels, ending):
            (images / name).symlink_to(os.path.realpath(raw / "imagesTr" / name))
        (labels / f"{case}{ending}").symlink_to(os.path.realpath(raw / "labelsTr" / f"{case}{ending}"))


def _write_dataset(folder: Path, dataset_json: dict, training: int, name: str, split: DomainSplit,
                   role: str, cases: dict) -> None:
    data = {**dataset_json, "numTraining": training, "name": name,
            "description": f"{role} domain ({split.column} = "
                           f"{split.source_value if role == 'source' else split.target_value}) of {split.raw}, "
                           f"split by nnunet-iac domain-split"}
    (folder / "dataset.json").write_text(json.dumps(data, indent=2))
    (folder / SPLIT_FILE).write_text(json.dumps({**asdict(split), "role": role, **cases}, indent=2))


def _existing(folder: Path, split: DomainSplit) -> bool:
    """True when ``folder`` holds this very split (reuse it); refuse any other content."""
    if not folder.exists():
        return False
    record = folder / SPLIT_FILE
    recorded = json.loads(record.read_text()) if record.is_file() else None
    if recorded is not None and all(recorded.get(k) == v for k, v in asdict(split).items()):
        return True
    holds = "another split" if recorded else f"no {SPLIT_FILE}"
    raise DatasetError(f"{folder} exists and does not hold this split ({holds}). Remove it, or choose other dataset "
                       f"ids with --source-id/--target-id.")


def split_by_domain(raw: Path, domains: Path, out_root: Path, source_value: str, target_value: str,
                    column: str = "domain", source_id: int = 903, target_id: int = 904, target_test: int = 40,
                    seed: int = 0) -> tuple[Path, Path]:
    """The source and target raw datasets under ``out_root`` (e.g. $nnUNet_raw); returns their folders."""
    source = identify(raw)
    if source.layout != "nnunet_raw":
        raise DatasetError(f"{raw} is a Decathlon task; convert it with nnUNetv2_convert_MSD_dataset first and split "
                           f"the converted nnU-Net raw folder.")
    if source_id == target_id:
        raise DatasetError(f"--source-id and --target-id are both {source_id}; the two datasets need their own ids.")
    dataset_json = json.loads((source.folder / "dataset.json").read_text())
    ending, channels = dataset_json["file_ending"], channel_count(dataset_json)
    cases = case_ids(source.folder / "labelsTr", ending)
    table = read_domains(domains, column)
    unlisted = [c for c in cases if c not in table]
    if unlisted:
        raise DatasetError(f"{len(unlisted)} case(s) of {raw} are not in {domains}, e.g. {unlisted[0]}; the table "
                           f"must list every case.")
    groups = {value: sorted(c for c in cases if table[c] == value) for value in (source_value, target_value)}
    for value, members in groups.items():
        if not members:
            present = sorted(set(table[c] for c in cases))
            raise DatasetError(f"No case of {raw} has {column} = {value!r}; the values there are {present}.")
    pool = groups[target_value]
    if not 0 < target_test <= len(pool) - 2:
        raise DatasetError(f"Cannot hold out {target_test} of the {len(pool)} target cases as the target test set "
                           f"and keep at least 2 to train on; choose --target-test between 1 and {len(pool) - 2}.")
    split = DomainSplit(str(source.folder), str(Path(domains).resolve()), column, source_value, target_value,
                        source_id, target_id, target_test, seed)
    test = sorted(random.Random(seed).sample(pool, target_test))
    training = [c for c in pool if c not in test]
    stem = source.name.split("_", 1)[1]
    folders = []
    for role, dataset_id, value in (("source", source_id, source_value), ("target", target_id, target_value)):
        name = _name(stem, column, value)
        folder = Path(out_root) / f"Dataset{dataset_id:03d}_{name}"
        folders.append(folder)
        if _existing(folder, split):
            continue
        train_cases = groups[source_value] if role == "source" else training
        _link_cases(source.folder, train_cases, folder / "imagesTr", folder / "labelsTr", channels, ending)
        recorded = {"training": train_cases}
        if role == "target":
            _link_cases(source.folder, test, folder / "imagesTs", folder / "labelsTs", channels, ending)
            recorded["test"] = test
        _write_dataset(folder, dataset_json, len(train_cases), name, split, role, recorded)
    return folders[0], folders[1]
