"""``nnunet-iac select``: retrain a search's candidate genotypes briefly, keep the best on val_search.

The paper picks the genotype for Stage III among those of several search epochs by their Stage III
result (Tables 2-4), on the set it then reports. Here the candidates are the N most frequent distinct
genotypes of one or more search histories (``candidates``), each is trained for a short budget
on train_search and scored on val_search (``trial_trainer``), so the fold's validation cases and any
test set stay untouched; the best Dice wins. With ``--from-evolution`` the candidates are an evolutionary
search's points, one per number of cell levels (``evolution_candidates``: its supernet score misjudges how
many levels), and the cheapest within a Dice tolerance of the best trial wins. The choice goes next to the
search's ``genotype.json`` (which stays as the search wrote it): ``genotype_selected.json`` (the winner) and
``genotype_selection.json`` (every candidate).
"""
from __future__ import annotations

import json
import logging
import os
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from nnunet_iac.common.atomic_io import atomic_write_json
from nnunet_iac.nnunet.base_model import BASE_ENV
from nnunet_iac.search.evolution import EVOLUTION_FILE
from nnunet_iac.selection.candidates import Candidate, history_path, rank_candidates
from nnunet_iac.selection.evolution_candidates import EvolutionCandidate, cheapest_within, evolution_candidates
from nnunet_iac.nnunet.retrain_setup import GENOTYPE_ENV
from nnunet_iac.search.split import SPLIT_FILE
from nnunet_iac.selection.trial import Runner, Trial, TrialJob, run_logged
from nnunet_iac.nnunet.settings import PREFIX, IACSettings, settings_for_genotype
from nnunet_iac.nnunet.trainer_base import SETTINGS_FILE
from nnunet_iac.nnunet.trainer_path import ext_trainer_value

SELECT_DIR = "select"
SELECTED_FILE = "genotype_selected.json"
SELECTION_FILE = "genotype_selection.json"
METRIC = "mean foreground Dice on val_search (nnU-Net's validation/summary.json of each trial)"
BEST_RULE = "highest val_search Dice"

logger = logging.getLogger(__name__)


class SelectionError(RuntimeError):
    """``nnunet-iac select`` cannot start: an input of the search is missing or an option is unusable."""


@dataclass(frozen=True)
class SelectOptions:
    """The ``select`` options; the budget is per candidate (epochs x iterations, nnU-Net's loop)."""

    candidates: int = 3
    epochs: int = 10
    iterations: int = 100
    val_iterations: int = 5
    device: str = "cuda"
    histories: tuple = field(default_factory=tuple)
    #: candidates from the search's evolution.json (one per number of levels) instead of its history
    from_evolution: bool = False
    #: with from_evolution: the Dice below the best trial's the cheapest winner may be (None: the search's
    #: nnUNet_IAC_evolution_tolerance)
    tolerance: float | None = None

    def validate(self) -> None:
        for name in ("candidates", "epochs", "iterations", "val_iterations"):
            if getattr(self, name) < 1:
                raise SelectionError(f"--{name.replace('_', '-')} {getattr(self, name)} must be 1 or more.")
        if self.tolerance is not None and not 0 <= self.tolerance <= 1:
            raise SelectionError(f"--tolerance {self.tolerance} must be a Dice difference between 0 and 1.")
        if self.from_evolution and self.histories:
            raise SelectionError("--histories adds search histories to count genotypes in; --from-evolution takes "
                                 "its candidates from one search's evolution.json. Use one of the two.")

    def budget(self) -> dict:
        return {"epochs": self.epochs, "iterations_per_epoch": self.iterations,
                "val_iterations_per_epoch": self.val_iterations}


def search_base_checkpoint(search_folder: Path) -> Path:
    """The base the search ran on (its ``iac_settings.json``): the trials must use the same frozen base."""
    settings = search_folder / SETTINGS_FILE
    if not settings.is_file():
        raise SelectionError(f"{settings} is missing, so the base the search ran on is unknown. Run (or continue, "
                             f"with --c) nnUNetTrainerIACSearch for this fold; it writes the file when it starts.")
    recorded = json.loads(settings.read_text()).get("base_checkpoint")
    if not recorded or not Path(recorded).is_file():
        raise SelectionError(f"The search's base checkpoint {recorded} (base_checkpoint in {settings}) is missing. "
                             f"Restore it there: the candidates must be trained in the base they were searched in.")
    return Path(recorded)


def search_tolerance(search_folder: Path) -> float:
    """The search's own ``nnUNet_IAC_evolution_tolerance`` (its ``iac_settings.json``), the front's rule."""
    recorded = json.loads((search_folder / SETTINGS_FILE).read_text()).get("evolution_tolerance")
    return float(recorded) if recorded is not None else IACSettings().evolution_tolerance


def search_split_file(search_folder: Path) -> Path:
    path = search_folder / SPLIT_FILE
    if not path.is_file():
        raise SelectionError(f"{path} is missing: without the search's train_search / val_search split the trials "
                             f"could only be scored on cases they trained on. Run (or continue, with --c) "
                             f"nnUNetTrainerIACSearch for this fold; it writes the split when it starts.")
    return path


def warn_about_other_splits(split_file: Path, other_histories: list[Path]) -> None:
    """Searches with another seed split the fold's cases differently: their genotypes were steered by other
    val_search cases, which the trials (on this search's split) cannot see as such."""
    ours = json.loads(split_file.read_text())["val_search"]
    for history in other_histories:
        theirs = history.parent / SPLIT_FILE
        if theirs.is_file() and json.loads(theirs.read_text()).get("val_search") != ours:
            logger.warning(f"{theirs} has other val_search cases than {split_file}: the genotypes of {history} were "
                           f"searched on another split; the trials train and score every candidate on {split_file}.")


def trial_environment(env: dict, results: Path, genotype: Path, base: Path, options: SelectOptions) -> dict:
    """The caller's environment (their nnU-Net folders and nnUNet_IAC_* knobs, as Stage III would see them),
    with the trial's own results folder, genotype, base, budget and validation switched on."""
    trial = {k: v for k, v in env.items() if k != f"{PREFIX}genotype_epoch"}
    trial.update({"nnUNet_results": str(results),
                  "nnUNet_extTrainer": ext_trainer_value(env.get("nnUNet_extTrainer", "")),
                  GENOTYPE_ENV: str(genotype), BASE_ENV: str(base), f"{PREFIX}retrain_validation": "1"})
    trial.update({f"{PREFIX}{name}": str(value) for name, value in options.budget().items()})
    return trial


def best_of(results: list[dict]) -> dict:
    """Highest val_search Dice; a trial without a finite Dice never wins; ties go to the higher-ranked one."""
    return max(results, key=lambda r: (r["val_search_dice"] is not None, r["val_search_dice"] or 0.0, -r["rank"]))


def history_candidates(search_folder: Path, options: SelectOptions) -> tuple[list[Candidate], dict]:
    """The N most frequent genotypes of the search's history (and --histories'), and what they were drawn from."""
    histories = [history_path(search_folder)] + [history_path(h) for h in options.histories]
    ranked = rank_candidates(histories)
    if len(ranked) < options.candidates:
        logger.warning(f"The search histories hold {len(ranked)} distinct genotype(s), fewer than the "
                       f"{options.candidates} candidates asked for; training all {len(ranked)}.")
    return ranked[:options.candidates], {"histories": [str(h) for h in histories], "distinct_genotypes": len(ranked),
                                         "candidates_requested": options.candidates}


def choose(results: list[dict], options: SelectOptions, search_folder: Path, chosen: list) -> tuple[dict, str]:
    """The winning trial and the rule that chose it: the best Dice, or for an evolution's points the cheapest near
    the best."""
    if not options.from_evolution:
        return best_of(results), BEST_RULE
    measure = chosen[0].measure
    tolerance = search_tolerance(search_folder) if options.tolerance is None else options.tolerance
    return cheapest_within(results, tolerance), (f"cheapest ({measure}) within {tolerance} of the best trial's "
                                                 f"val_search Dice (--tolerance; the search's "
                                                 f"nnUNet_IAC_evolution_tolerance by default)")


def select_genotype(search_folder: Path, job: TrialJob, options: SelectOptions, env: dict | None = None,
                    runner: Runner = run_logged) -> dict:
    """Train every candidate (or re-use its finished trial), write the choice; the selection record."""
    options.validate()
    search_folder = Path(search_folder)
    if options.from_evolution:
        chosen, source = evolution_candidates(search_folder), {"evolution": str(search_folder / EVOLUTION_FILE)}
    else:
        chosen, source = history_candidates(search_folder, options)
    split_file = search_split_file(search_folder)
    if not options.from_evolution:
        warn_about_other_splits(split_file, [Path(h) for h in source["histories"][1:]])
    base = search_base_checkpoint(search_folder)
    env = dict(os.environ if env is None else env)
    results = [run_candidate(search_folder / SELECT_DIR, rank, candidate, job, options, env, split_file, base, runner)
               for rank, candidate in enumerate(chosen, 1)]
    winner, rule = choose(results, options, search_folder, chosen)
    selection = {"format": "nnunet-iac-genotype-selection", "version": 1, "metric": METRIC, "rule": rule,
                 "job": asdict(job), "budget": options.budget(), "base_checkpoint": str(base),
                 "split": str(split_file), **source, "selected": winner["name"], "candidates": results}
    write_selection(search_folder, selection, chosen)
    return selection


def run_candidate(select_dir: Path, rank: int, candidate: Candidate | EvolutionCandidate, job: TrialJob,
                  options: SelectOptions, env: dict, split_file: Path, base: Path, runner: Runner) -> dict:
    trial = Trial(select_dir / candidate.name, job)
    trial.folder.mkdir(parents=True, exist_ok=True)
    candidate.genotype.save(trial.genotype_file)
    trial_env = trial_environment(env, trial.folder, trial.genotype_file, base, options)
    # what the trial's retrain will run with: the genotype's cell options (a contradicting variable stops here)
    settings = settings_for_genotype(IACSettings.from_env(trial_env), candidate.genotype, str(trial.genotype_file),
                                     trial_env).to_dict()
    logger.info(f"[{rank}] {candidate.name}: {candidate.why()}, training "
                f"{options.epochs} x {options.iterations} iterations (log: {trial.log}) ...")
    record = trial.run(trial_env, settings, split_file, options.device, runner)
    dice = record["val_search_dice"]
    logger.info(f"[{rank}] {candidate.name}: val_search Dice {'n/a' if dice is None else f'{dice:.4f}'}"
                + (" (finished earlier, not retrained)" if record["resumed"] else f" in {record['seconds']:.0f} s"))
    return {"rank": rank, **candidate.describe(), "val_search_dice": dice, "seconds": record["seconds"],
            "resumed": record["resumed"], "trial_folder": str(trial.folder), "log": record["log"],
            "genotype": candidate.genotype.to_dict()}


def write_selection(search_folder: Path, selection: dict, chosen: list) -> None:
    winner = next(c for c in chosen if c.name == selection["selected"])
    row = next(r for r in selection["candidates"] if r["name"] == selection["selected"])
    described = {k: v for k, v in winner.describe().items() if k != "name"}
    meta = {**winner.genotype.meta, "selection": {
        "by": "nnunet-iac select", "metric": METRIC, "rule": selection["rule"],
        "val_search_dice": row["val_search_dice"], "rank": row["rank"], **described, "candidates": len(chosen),
        "details": SELECTION_FILE}}
    atomic_write_json(search_folder / SELECTION_FILE, selection)
    replace(winner.genotype, meta=meta).save(search_folder / SELECTED_FILE)


def selection_table(selection: dict, search_folder: Path) -> str:
    """The candidates as a markdown table, and how Stage III uses the winner."""
    evolved = "evolution" in selection
    lines = [f"Candidates ({selection['metric']}; chosen: {selection.get('rule', BEST_RULE)}):", "",
             "| rank | candidate | " + ("levels | supernet Dice | cost" if evolved else "search epochs chosen")
             + " | val_search Dice | trial s | |", "|---|---|" + ("---|---|---|" if evolved else "---|") + "---|---|---|"]
    for row in selection["candidates"]:
        dice = "n/a" if row["val_search_dice"] is None else f"{row['val_search_dice']:.4f}"
        mark = "selected" if row["name"] == selection["selected"] else ""
        why = (f"{','.join(map(str, row['levels']))} | {row['supernet_dice']:.4f} | {row['cost']:g}" if evolved
               else f"{row['frequency']}")
        lines.append(f"| {row['rank']} | {row['name']} | {why} | {dice} | {row['seconds']:.0f} | {mark} |")
    job = selection["job"]
    lines += ["", f"Written: {search_folder / SELECTED_FILE} and {search_folder / SELECTION_FILE} "
                  f"(genotype.json is unchanged).", "Stage III with the selected genotype:",
              f"  {GENOTYPE_ENV}={search_folder / SELECTED_FILE} nnUNetv2_train {job['dataset']} "
              f"{job['configuration']} {job['fold']} -tr nnUNetTrainerIACRetrain -p {job['plans']}"]
    return "\n".join(lines)
