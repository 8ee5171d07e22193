"""Which genotypes of a search are worth a Stage III trial: the most frequent ones over the search epochs.

The genotype of one epoch is a noisy read-out of alpha/beta (the paper, 4.4.1, finds the search
unstable and Stage III results that differ between epochs), so the genotypes the search kept choosing
are the candidates. Warm-up epochs do not count: alpha has not moved yet and their genotype is the
arbitrary tie-break of a uniform alpha. Several histories (several seeds of the same search) are
counted together.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

from nnunet_iac.cells.genotype import Genotype, GenotypeError
from nnunet_iac.search.history import HISTORY_FILE, HistoryFileError, read_history_rows


class CandidateError(RuntimeError):
    """A search history that cannot provide candidate genotypes."""


@dataclass
class Candidate:
    """One distinct genotype, with every (history, epoch) that chose it."""

    genotype: Genotype
    chosen_in: dict[str, list[int]] = field(default_factory=dict)
    first_seen: int = 0

    @property
    def frequency(self) -> int:
        return sum(len(epochs) for epochs in self.chosen_in.values())

    @property
    def latest_epoch(self) -> int:
        return max(max(epochs) for epochs in self.chosen_in.values())

    @property
    def name(self) -> str:
        return f"candidate_{genotype_key(self.genotype)}"

    def why(self) -> str:
        return f"chosen in {self.frequency} search epoch(s)"

    def describe(self) -> dict:
        return {"name": self.name, "frequency": self.frequency, "latest_epoch": self.latest_epoch,
                "chosen_in": [{"history": h, "epochs": e} for h, e in self.chosen_in.items()]}


def genotype_key(genotype: Genotype) -> str:
    """A short name that is the same for the same cell (operations, inputs, concat, branches), whatever its meta;
    a genotype without branches keeps the name it had before branches existed."""
    graph = [genotype.to_dict()["nodes"], list(genotype.concat)]
    text = json.dumps(graph + [[list(b) for b in genotype.branches]] if genotype.branches else graph)
    return hashlib.sha1(text.encode()).hexdigest()[:10]


def history_path(path: str | Path) -> Path:
    """A search_history.json, given as the file or as the search fold folder that holds it."""
    path = Path(path).expanduser()
    return path / HISTORY_FILE if path.is_dir() else path


def searched_genotypes(path: Path) -> list[tuple[int, Genotype]]:
    """(epoch, genotype) of every search-phase epoch of one history file."""
    try:
        rows = read_history_rows(path)
    except HistoryFileError as e:
        if e.missing:
            raise CandidateError(f"No search history at {path}. Run nnUNetTrainerIACSearch for this fold first "
                                 f"(it writes {HISTORY_FILE} after every epoch), or name an existing one.") from None
        raise CandidateError(f"{e} Restore it from the search's checkpoint (continue the search with --c) or "
                             f"search again.") from e
    try:
        found = [(r["epoch"], Genotype.from_dict(r["genotype"], f"{path}, epoch {r['epoch']}"))
                 for r in rows if r["phase"] == "search"]
    except GenotypeError as e:
        raise CandidateError(str(e)) from e
    if not found:
        raise CandidateError(f"{path} has only warm-up epochs ({len(rows)}), whose genotypes are arbitrary (alpha "
                             f"has not moved). Search longer: nnUNet_IAC_epochs must exceed "
                             f"nnUNet_IAC_warmup_epochs (continue the search with --c).")
    return found


def searched_with(genotype: Genotype) -> str:
    """The cell options and search space a genotype records, as text to compare."""
    return json.dumps({"cell_options": genotype.cell_options, "search_space": list(genotype.search_space)})


def search_differences(a: Genotype, b: Genotype) -> str:
    """What differs between the searches of two genotypes, e.g. ``width_divisor 1 vs 4``."""
    parts = [f"{name} {a.cell_options[name]} vs {b.cell_options[name]}" for name in a.cell_options
             if a.cell_options[name] != b.cell_options[name]]
    if a.search_space != b.search_space:
        parts.append(f"search space {', '.join(a.search_space)} vs {', '.join(b.search_space)}")
    return "; ".join(parts)


def refuse_mixed_searches(found: list[tuple[Path, int, Genotype]]) -> None:
    """Histories counted together must come from searches with the same cell options and search space: a
    candidate's genotype is that of its latest epoch, and Stage III builds the cells with its options.
    Version-1 rows record none and are not compared."""
    first: dict[str, tuple[Path, int, Genotype]] = {}
    for path, epoch, genotype in found:
        if genotype.cell_options is not None:
            first.setdefault(searched_with(genotype), (path, epoch, genotype))
    if len(first) > 1:
        (path_a, epoch_a, a), (path_b, epoch_b, b) = list(first.values())[:2]
        raise CandidateError(f"The histories come from different searches: {path_a} (epoch {epoch_a}) and {path_b} "
                             f"(epoch {epoch_b}) differ in {search_differences(a, b)}. Select among the histories "
                             f"of one search set-up (drop the other from --histories).")


def rank_candidates(histories: list[Path]) -> list[Candidate]:
    """Every distinct genotype of the histories, most frequent first; ties go to the one chosen latest,
    then to the one seen first (history order, then epoch order)."""
    found = [(path, epoch, genotype) for path in histories for epoch, genotype in searched_genotypes(path)]
    refuse_mixed_searches(found)
    by_key: dict[str, Candidate] = {}
    for path, epoch, genotype in found:
        key = genotype_key(genotype)
        if key not in by_key:
            by_key[key] = Candidate(genotype, first_seen=len(by_key))
        candidate = by_key[key]
        candidate.chosen_in.setdefault(str(path), []).append(epoch)
        if epoch >= candidate.latest_epoch:
            candidate.genotype = genotype
    return sorted(by_key.values(), key=lambda c: (-c.frequency, -c.latest_epoch, c.first_seen))
