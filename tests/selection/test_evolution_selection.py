"""``nnunet-iac select --from-evolution`` (issue 18): one Stage-III trial per number of cell levels among an
evolution's points, and the cheapest trial within the tolerance of the best wins."""
import json
from pathlib import Path

import pytest

from nnunet_iac.cells.genotype import CELL_OPTION_NAMES, Genotype
from nnunet_iac.cells.operations import search_space
from nnunet_iac.nnunet.settings import IACSettings
from nnunet_iac.selection.candidates import CandidateError
from nnunet_iac.selection.evolution_candidates import cheapest_within, evolution_candidates
from nnunet_iac.selection.select_genotype import (SELECTED_FILE, SELECTION_FILE, SelectionError, SelectOptions,
                                                  select_genotype, selection_table)
from nnunet_iac.selection.trial import TrialJob

PAPER_TRIAL = "nnUNetTrainerIACRetrainPaperTrial"
JOB = TrialJob("Dataset990_IACSynthetic", "2d", "0", "nnUNetPlans", PAPER_TRIAL)
EVERY_LEVEL = (0, 1, 2)
#: trial Dice by the number of levels with a cell: Stage III rises with levels, the supernet fell with them
TRIAL_DICE = {3: 0.800, 2: 0.797, 1: 0.760}


def genotype(op: str, levels: tuple[int, ...]) -> dict:
    options = {name: getattr(IACSettings(), name) for name in CELL_OPTION_NAMES}
    options["levels"] = ",".join(map(str, levels))
    return Genotype(nodes=tuple(((op, 0), (op, 1)) for _ in range(4)), concat=(2, 3, 4, 5), cell_options=options,
                    search_space=tuple(search_space())).to_dict()


def point(op: str, levels: tuple[int, ...], dice: float, latency: float) -> dict:
    return {"genotype": genotype(op, levels), "levels": list(levels), "dice": dice, "latency": latency,
            "parameters": 100 * len(levels), "flops": 0}


#: supernet Dice falls with levels (the bias measured on DSB2018); two 1-level points tie on Dice
POINTS = [point("sep_conv_3x3", (0, 1, 2), 0.70, 30.0), point("dil_conv_3x3", (0, 1, 2), 0.71, 33.0),
          point("sep_conv_3x3", (1, 2), 0.74, 20.0), point("identity", (1,), 0.78, 9.0),
          point("max_pool_3x3", (2,), 0.78, 5.0), point("dil_conv_3x3", (0,), 0.77, 4.0)]


@pytest.fixture
def search(tmp_path):
    """An evolutionary search's fold folder: evolution.json, split, settings (tolerance 0.005), base."""
    folder = tmp_path / "results" / "nnUNetTrainerIACSearchPaper__nnUNetPlans__2d" / "fold_0"
    folder.mkdir(parents=True)
    (folder / "search_split.json").write_text(json.dumps({"fold": 0, "seed": 1, "train_search": ["a", "b"],
                                                          "val_search": ["c", "d"]}))
    base = tmp_path / "base" / "checkpoint_best.pth"
    base.parent.mkdir()
    base.write_bytes(b"weights")
    (folder / "iac_settings.json").write_text(json.dumps({"base_checkpoint": str(base), "evolution_tolerance": 0.005}))
    (folder / "evolution.json").write_text(json.dumps({"cost_measure": "latency", "points": POINTS, "front": [3, 4],
                                                       "chosen": 4, "levels_searched": "0,1,2"}))
    return folder


class FakeTrain:
    """Stands in for nnUNetv2_train: a trial's Dice depends on how many levels its genotype gives cells."""

    def __init__(self):
        self.calls = []

    def __call__(self, command, env, log):
        dataset, configuration, fold = command[1:4]
        trainer = command[command.index("-tr") + 1]
        levels = Genotype.load(env["nnUNet_IAC_genotype"]).cell_options["levels"]
        self.calls.append((trainer, levels))
        fold_folder = Path(env["nnUNet_results"]) / dataset / f"{trainer}__nnUNetPlans__{configuration}" / f"fold_{fold}"
        assert (fold_folder / "search_split.json").is_file()
        dice = TRIAL_DICE[len(levels.split(","))]
        (fold_folder / "validation").mkdir(parents=True)
        (fold_folder / "validation" / "summary.json").write_text(json.dumps(
            {"mean": {"1": {"Dice": dice}}, "foreground_mean": {"Dice": dice}}))
        return 0


def test_one_candidate_per_number_of_levels_the_supernets_best_of_each_cheaper_on_a_tie(search):
    found = evolution_candidates(search)
    assert [(c.levels, c.index) for c in found] == [((0, 1, 2), 1), ((1, 2), 2), ((2,), 4)]
    assert found[2].cost == 5.0 and found[2].measure == "latency"
    assert found[0].name != evolution_candidates(search)[1].name
    assert found[0].genotype.cell_options["levels"] == "0,1,2"


def test_points_of_an_older_evolution_file_get_their_own_levels(search):
    """evolution.json written before its points carried their levels: every genotype says 'all' (the search's)."""
    record = json.loads((search / "evolution.json").read_text())
    for p in record["points"]:
        p["genotype"]["cell_options"]["levels"] = "all"
    (search / "evolution.json").write_text(json.dumps(record))
    found = evolution_candidates(search)
    assert [c.genotype.cell_options["levels"] for c in found] == ["all", "1,2", "2"]


def test_the_trials_pick_the_cheapest_within_the_searchs_tolerance_not_the_supernets_choice(search):
    train = FakeTrain()
    # run with the search's environment: its nnUNet_IAC_levels named the levels the evolution chose among
    selection = select_genotype(search, JOB, SelectOptions(epochs=1, iterations=2, from_evolution=True),
                                env={"nnUNet_IAC_levels": "0,1,2"}, runner=train)
    assert train.calls == [(PAPER_TRIAL, "0,1,2"), (PAPER_TRIAL, "1,2"), (PAPER_TRIAL, "2")]
    rows = {tuple(r["levels"]): r for r in selection["candidates"]}
    assert rows[(1, 2)]["name"] == selection["selected"]  # 0.797 is within 0.005 of 0.800 and costs 20 < 33
    assert rows[(2,)]["val_search_dice"] == 0.760 and rows[(2,)]["supernet_dice"] == 0.78
    assert "within 0.005" in selection["rule"] and selection["job"]["trainer"] == PAPER_TRIAL
    selected = Genotype.load(search / SELECTED_FILE)
    assert selected.cell_options["levels"] == "1,2"
    assert selected.meta["selection"]["val_search_dice"] == 0.797 and selected.meta["selection"]["levels"] == [1, 2]
    assert json.loads((search / SELECTION_FILE).read_text()) == selection
    table = selection_table(selection, search)
    assert "| 1,2 | 0.7400 | 20 | 0.7970 |" in table and "selected" in table


def test_a_tolerance_of_zero_keeps_the_best_trial_and_finished_trials_are_reused(search):
    select_genotype(search, JOB, SelectOptions(epochs=1, iterations=2, from_evolution=True), env={},
                    runner=FakeTrain())
    again = FakeTrain()
    selection = select_genotype(search, JOB, SelectOptions(epochs=1, iterations=2, from_evolution=True, tolerance=0.0),
                                env={}, runner=again)
    assert again.calls == []
    assert Genotype.load(search / SELECTED_FILE).cell_options["levels"] == "0,1,2"
    assert "within 0.0 " in selection["rule"]


def test_cheapest_within_ignores_trials_without_a_dice_and_refuses_when_none_has_one():
    rows = [{"val_search_dice": None, "cost": 1.0}, {"val_search_dice": 0.5, "cost": 3.0},
            {"val_search_dice": 0.49, "cost": 2.0}]
    assert cheapest_within(rows, 0.02) is rows[2] and cheapest_within(rows, 0.001) is rows[1]
    with pytest.raises(CandidateError, match="No trial left a finite val_search Dice"):
        cheapest_within(rows[:1], 0.1)


def test_a_search_without_an_evolution_and_mixed_options_are_refused_with_the_fix(search):
    (search / "evolution.json").write_text(json.dumps({"points": []}))
    with pytest.raises(CandidateError, match="needs 'points' and 'cost_measure'"):
        select_genotype(search, JOB, SelectOptions(from_evolution=True), env={}, runner=FakeTrain())
    (search / "evolution.json").unlink()
    train = FakeTrain()
    with pytest.raises(CandidateError, match="evolution.json is missing.*nnUNet_IAC_strategy=nsga2"):
        select_genotype(search, JOB, SelectOptions(from_evolution=True), env={}, runner=train)
    with pytest.raises(SelectionError, match="Use one of the two"):
        select_genotype(search, JOB, SelectOptions(from_evolution=True, histories=("other",)), env={}, runner=train)
    with pytest.raises(SelectionError, match="--tolerance 2.0 must be a Dice difference"):
        select_genotype(search, JOB, SelectOptions(from_evolution=True, tolerance=2.0), env={}, runner=train)
    assert train.calls == []
