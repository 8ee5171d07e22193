"""The target's few-shot support sets as nnU-Net folds: one fold per (shots, support seed), append-only.

A few-shot result depends on which k cases were labelled, often more than on the method (issue 36 asks for several
random support sets per shot count). Each support set is a seeded draw of k cases from the target's training
pool; nnU-Net trains on it as an ordinary fold of ``splits_final.json``, so every arm (IAC, controls, target-only)
trains through ``nnUNetv2_train TARGET 2d FOLD`` unchanged. The fold's validation cases are its support set
again: in a few-shot setting there are no other labelled target cases to monitor on, and the benchmark predicts
with the final checkpoint, so nnU-Net's per-epoch pseudo-Dice is only a log.

The list of support sets is kept in the run folder and only ever grows: a later run asking for more shot counts or
seeds appends folds, and every fold already trained keeps its number and its cases.
"""
from __future__ import annotations

import json
import random
from dataclasses import asdict, dataclass
from pathlib import Path

ALL = "all"
SUPPORT_FILE = "support_sets.json"


class SupportSetError(ValueError):
    """Shot counts or seeds that cannot be drawn from the pool; the message names the option."""


@dataclass(frozen=True)
class SupportSet:
    shots: str  # "5", "10", ..., or "all"
    seed: int
    cases: tuple[str, ...]

    @property
    def label(self) -> str:
        return f"{self.shots} shots" if self.shots == ALL else f"{self.shots} shots, support seed {self.seed}"


def parse_shots(text: str) -> list[str]:
    """``5,10,20,all`` -> ["5", "10", "20", "all"]; each a positive count or ``all``."""
    items = [item.strip().lower() for item in text.split(",") if item.strip()]
    if not items:
        raise SupportSetError(f"--shots {text!r} names no shot count; give e.g. 5,10,20,all.")
    for item in items:
        if item != ALL and not (item.isdigit() and int(item) > 0):
            raise SupportSetError(f"--shots {text!r}: {item!r} is neither a positive number of cases nor 'all'.")
    return list(dict.fromkeys(items))


def draw(pool: list[str], shots: str, seed: int) -> SupportSet:
    """``shots`` cases of ``pool`` drawn with ``seed`` (the whole pool for ``all``). Nested: the first k of one
    seeded order of the pool, so a seed's 5 cases are among its 10 and its 10 among its 20, and the curve over
    shots compares more data, not other cases."""
    pool = sorted(pool)
    if shots == ALL:
        return SupportSet(ALL, 0, tuple(pool))
    k = int(shots)
    if k > len(pool):
        raise SupportSetError(f"--shots {k}: the target's training pool has only {len(pool)} cases; choose at most "
                              f"{len(pool)} or 'all'.")
    order = list(pool)
    random.Random(seed).shuffle(order)
    return SupportSet(shots, seed, tuple(sorted(order[:k])))


def requested(pool: list[str], shots: list[str], seeds: list[int]) -> list[SupportSet]:
    """Every support set a run asks for: each shot count with each seed, ``all`` once."""
    return list(dict.fromkeys(draw(pool, k, 0 if k == ALL else s) for k in shots for s in seeds))


def assign_folds(folder: Path, wanted: list[SupportSet]) -> dict[SupportSet, int]:
    """Fold number of every wanted set: the recorded sets keep theirs, new ones are appended (SUPPORT_FILE)."""
    record = Path(folder) / SUPPORT_FILE
    known = [SupportSet(r["shots"], r["seed"], tuple(r["cases"])) for r in
             (json.loads(record.read_text()) if record.is_file() else [])]
    for support in wanted:
        if support not in known:
            clash = [k for k in known if (k.shots, k.seed) == (support.shots, support.seed)]
            if clash:
                raise SupportSetError(f"{record} holds another draw for {support.label} (the target's training pool "
                                      f"changed?); use a new --out for another pool.")
            known.append(support)
    record.write_text(json.dumps([{**asdict(s), "cases": list(s.cases)} for s in known], indent=2))
    return {support: known.index(support) for support in wanted}


def write_splits(preprocessed_dataset: Path, folder: Path) -> Path:
    """nnU-Net's ``splits_final.json`` with one fold per recorded support set: train and val are the support set."""
    sets = json.loads((Path(folder) / SUPPORT_FILE).read_text())
    path = Path(preprocessed_dataset) / "splits_final.json"
    path.write_text(json.dumps([{"train": s["cases"], "val": s["cases"]} for s in sets], indent=2))
    return path
