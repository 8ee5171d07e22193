"""Stage III on the genotype of a chosen search epoch (``nnUNet_IAC_genotype_epoch``).

The paper retrained genotypes of several search epochs and kept the best (Tables 2-4: the chosen epochs
range from 100 to 500). The search writes every epoch's genotype to ``search_history.json`` next to its
``genotype.json``; this reads one of them. The file is read as plain JSON rows (``epoch``, ``genotype``)
so that histories written before or after other fields were added read alike.
"""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from nnunet_iac.cells.genotype import Genotype, GenotypeError
from nnunet_iac.search.history import HISTORY_FILE, HistoryFileError, read_history_rows

EPOCH_ENV = "nnUNet_IAC_genotype_epoch"


def epoch_ranges(epochs: list[int]) -> str:
    """``[0, 1, 2, 5]`` -> ``"0-2, 5"``: the epochs present, short enough for an error message."""
    parts, start = [], None
    for i, epoch in enumerate(epochs):
        if start is None:
            start = epoch
        if i + 1 == len(epochs) or epochs[i + 1] != epoch + 1:
            parts.append(str(start) if start == epoch else f"{start}-{epoch}")
            start = None
    return ", ".join(parts)


def genotype_of_epoch(history: Path, epoch: int) -> Genotype:
    """The genotype the search recorded for ``epoch``, with the cell options and search space of that row; its
    meta names the epoch and the history file."""
    try:
        by_epoch = {row["epoch"]: row["genotype"] for row in read_history_rows(history)}
    except HistoryFileError as e:
        if e.missing:
            raise GenotypeError(f"{EPOCH_ENV}={epoch} needs the search history {history}, which does not exist (it "
                                f"is read next to the genotype file). Point nnUNet_IAC_genotype at the genotype.json "
                                f"of a search folder that has its {HISTORY_FILE}, or unset {EPOCH_ENV} to use the "
                                f"final genotype.") from None
        raise GenotypeError(f"{e} Restore it from the search's checkpoint, or unset {EPOCH_ENV}.") from e
    if epoch not in by_epoch:
        present = epoch_ranges(sorted(by_epoch)) or "none"
        raise GenotypeError(f"{EPOCH_ENV}={epoch}: {history} has no epoch {epoch}; epochs present: {present}. Pick "
                            f"one of those, or unset {EPOCH_ENV} to use the final genotype.")
    genotype = Genotype.from_dict(by_epoch[epoch], f"{history} epoch {epoch}")
    return replace(genotype, meta={**genotype.meta, "genotype_epoch": epoch, "genotype_history": str(history)})
