"""``nnunet-iac select``: candidate ranking, the trial split, the selection flow and one real run through nnU-Net."""
import json
import logging
from pathlib import Path

import pytest

from nnunet_iac.cells.genotype import Genotype
from nnunet_iac.selection.candidates import CandidateError, genotype_key, rank_candidates
from nnunet_iac.selection.select_genotype import (SELECTED_FILE, SELECTION_FILE, SelectionError, SelectOptions,
                                           select_genotype, trial_environment)
from nnunet_iac.search.split import SearchSplitError
from nnunet_iac.selection.trial import TRIAL_TRAINER, TrialError, TrialJob
from nnunet_iac.nnunet.trial_trainer import IACRetrainTrialTrainer, read_trial_split

JOB = TrialJob("Dataset990_IACSynthetic", "2d", "0")
TRAIN_SEARCH, VAL_SEARCH = ["case_a", "case_b"], ["case_c", "case_d"]
DICE_BY_OP = {"sep_conv_3x3": 0.6, "dil_conv_3x3": 0.8, "max_pool_3x3": 0.7, "identity": 0.5}


def genotype(op: str, epoch: int = 0) -> dict:
    return Genotype(nodes=tuple(((op, 0), (op, 1)) for _ in range(4)), concat=(2, 3, 4, 5),
                    meta={"epoch": epoch}).to_dict()


def write_history(path: Path, ops: list, warmup: int = 0) -> Path:
    rows = [{"epoch": e, "phase": "warmup" if e < warmup else "search", "genotype": genotype(op, e)}
            for e, op in enumerate(ops)]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(rows))
    return path


def op_of(candidate) -> str:
    return candidate.genotype.nodes[0][0][0]


# ---- candidate ranking ------------------------------------------------------------------------------------

def test_candidates_are_ranked_by_frequency_over_search_epochs_only(tmp_path):
    history = write_history(tmp_path / "search_history.json",
                            ["identity", "identity", "sep_conv_3x3", "dil_conv_3x3", "sep_conv_3x3"], warmup=2)
    ranked = rank_candidates([history])
    assert [op_of(c) for c in ranked] == ["sep_conv_3x3", "dil_conv_3x3"]  # warm-up genotypes do not count
    assert ranked[0].frequency == 2 and ranked[0].chosen_in == {str(history): [2, 4]}
    assert ranked[0].genotype.meta["epoch"] == 4  # the meta of the latest epoch that chose it


def test_equal_frequencies_go_to_the_genotype_chosen_latest(tmp_path):
    history = write_history(tmp_path / "h.json", ["identity", "sep_conv_3x3", "dil_conv_3x3", "identity"])
    ranked = rank_candidates([history])
    assert [op_of(c) for c in ranked] == ["identity", "dil_conv_3x3", "sep_conv_3x3"]
    assert [c.latest_epoch for c in ranked] == [3, 2, 1]


def test_several_histories_are_counted_together(tmp_path):
    seed1 = write_history(tmp_path / "seed1" / "search_history.json", ["sep_conv_3x3", "dil_conv_3x3"])
    seed2 = write_history(tmp_path / "seed2" / "search_history.json", ["dil_conv_3x3", "dil_conv_3x3"])
    ranked = rank_candidates([seed1, seed2])
    assert [op_of(c) for c in ranked] == ["dil_conv_3x3", "sep_conv_3x3"]
    assert ranked[0].frequency == 3
    assert ranked[0].chosen_in == {str(seed1): [1], str(seed2): [0, 1]}


def test_the_candidate_name_ignores_meta():
    a, b = Genotype.from_dict(genotype("identity", 1)), Genotype.from_dict(genotype("identity", 7))
    assert genotype_key(a) == genotype_key(b) != genotype_key(Genotype.from_dict(genotype("sep_conv_3x3")))


def test_history_errors_name_the_file_and_the_fix(tmp_path):
    with pytest.raises(CandidateError, match="No search history at .*Run nnUNetTrainerIACSearch"):
        rank_candidates([tmp_path / "missing.json"])
    only_warmup = write_history(tmp_path / "w.json", ["identity", "identity"], warmup=2)
    with pytest.raises(CandidateError, match="only warm-up epochs.*nnUNet_IAC_warmup_epochs"):
        rank_candidates([only_warmup])
    broken = tmp_path / "broken.json"
    broken.write_text("[{")
    with pytest.raises(CandidateError, match="broken.json is not valid JSON"):
        rank_candidates([broken])
    (tmp_path / "other.json").write_text(json.dumps({"epochs": 3}))
    with pytest.raises(CandidateError, match="is not a search history"):
        rank_candidates([tmp_path / "other.json"])


# ---- the trial's split ------------------------------------------------------------------------------------

def write_split(folder: Path, train=TRAIN_SEARCH, val=VAL_SEARCH) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "search_split.json").write_text(json.dumps({"fold": 0, "seed": 1, "train_search": train,
                                                          "val_search": val}))
    return folder / "search_split.json"


def test_trial_trainer_splits_into_train_search_and_val_search(tmp_path, monkeypatch):
    from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer

    write_split(tmp_path)
    fold_val = ["case_e"]
    monkeypatch.setattr(nnUNetTrainer, "do_split", lambda self: (TRAIN_SEARCH + VAL_SEARCH, fold_val))
    trainer = IACRetrainTrialTrainer.__new__(IACRetrainTrialTrainer)
    trainer.output_folder, trainer.fold, logged = str(tmp_path), 0, []
    trainer.print_to_log_file = lambda *args, **kwargs: logged.append(" ".join(map(str, args)))
    assert trainer.do_split() == (TRAIN_SEARCH, VAL_SEARCH)
    assert "training on 2 train_search cases" in logged[0]


def test_trial_split_must_exist_and_divide_the_folds_training_cases(tmp_path):
    with pytest.raises(SearchSplitError, match="search_split.json is missing.*nnunet-iac select"):
        read_trial_split(tmp_path / "search_split.json", TRAIN_SEARCH + VAL_SEARCH, 0)
    split = write_split(tmp_path)
    with pytest.raises(SearchSplitError, match="does not split the training cases of fold 1"):
        read_trial_split(split, TRAIN_SEARCH + ["case_x", "case_y"], 1)


# ---- the selection flow, with nnU-Net replaced by a stand-in ----------------------------------------------

@pytest.fixture
def search(tmp_path):
    """A finished search's fold folder: history (sep 3 x, dil 2 x, max_pool 1 x), split, settings, base."""
    folder = tmp_path / "results" / "nnUNetTrainerIACSearch__nnUNetPlans__2d" / "fold_0"
    write_history(folder / "search_history.json", ["identity", "sep_conv_3x3", "dil_conv_3x3", "sep_conv_3x3",
                                                   "max_pool_3x3", "dil_conv_3x3", "sep_conv_3x3"], warmup=1)
    write_split(folder)
    base = tmp_path / "base" / "checkpoint_final.pth"
    base.parent.mkdir()
    base.write_bytes(b"weights")
    (folder / "iac_settings.json").write_text(json.dumps({"base_checkpoint": str(base)}))
    Genotype.from_dict(genotype("sep_conv_3x3")).save(folder / "genotype.json")
    return folder


class FakeTrain:
    """Stands in for nnUNetv2_train: checks what the trial gets, writes nnU-Net's summary.json."""

    def __init__(self, fail_op: str = ""):
        self.calls, self.fail_op = [], fail_op

    def __call__(self, command, env, log):
        dataset, configuration, fold = command[1:4]
        op = Genotype.load(env["nnUNet_IAC_genotype"]).nodes[0][0][0]
        self.calls.append((op, env))
        fold_folder = Path(env["nnUNet_results"]) / dataset / f"{TRIAL_TRAINER}__nnUNetPlans__{configuration}" / \
            f"fold_{fold}"
        assert json.loads((fold_folder / "search_split.json").read_text())["val_search"] == VAL_SEARCH
        if op == self.fail_op:
            log.write_text("Traceback: something broke\n")
            return 1
        dice = DICE_BY_OP[op]
        summary = {"mean": {"1": {"Dice": dice}}, "foreground_mean": {"Dice": dice}}
        (fold_folder / "validation").mkdir(parents=True)
        (fold_folder / "validation" / "summary.json").write_text(json.dumps(summary))
        return 0


def folder_state(folder):
    return {p: p.stat().st_mtime_ns for p in folder.rglob("*")}


def test_select_trains_the_top_candidates_and_keeps_the_best_on_val_search(search):
    before = folder_state(search)
    train = FakeTrain()
    selection = select_genotype(search, JOB, SelectOptions(candidates=2, epochs=1, iterations=2), env={},
                                runner=train)
    assert [op for op, _ in train.calls] == ["sep_conv_3x3", "dil_conv_3x3"]  # the two most frequent
    env = train.calls[0][1]
    assert env["nnUNet_IAC_epochs"] == "1" and env["nnUNet_IAC_iterations_per_epoch"] == "2"
    assert env["nnUNet_IAC_base"] == json.loads((search / "iac_settings.json").read_text())["base_checkpoint"]
    assert Path(env["nnUNet_results"]).parent == search / "select"
    selected = Genotype.load(search / SELECTED_FILE)
    assert selected.nodes[0][0][0] == "dil_conv_3x3"  # 0.8 beats 0.6
    assert selected.meta["selection"]["val_search_dice"] == 0.8 and selected.meta["epoch"] == 5
    written = json.loads((search / SELECTION_FILE).read_text())
    assert written == selection
    assert [(c["rank"], c["frequency"], c["val_search_dice"]) for c in written["candidates"]] == \
        [(1, 3, 0.6), (2, 2, 0.8)]
    assert written["candidates"][1]["chosen_in"][0]["epochs"] == [2, 5]
    changed = {p for p, t in folder_state(search).items() if before.get(p) != t}
    assert {p.relative_to(search).parts[0] for p in changed} == {"select", SELECTED_FILE, SELECTION_FILE}


def test_select_resumes_finished_trials_and_reruns_on_another_budget(search):
    select_genotype(search, JOB, SelectOptions(candidates=2, epochs=1, iterations=2), env={}, runner=FakeTrain())
    again = FakeTrain()
    selection = select_genotype(search, JOB, SelectOptions(candidates=3, epochs=1, iterations=2), env={},
                                runner=again)
    assert [op for op, _ in again.calls] == ["max_pool_3x3"]
    assert [c["resumed"] for c in selection["candidates"]] == [True, True, False]
    longer = FakeTrain()
    select_genotype(search, JOB, SelectOptions(candidates=1, epochs=2, iterations=2), env={}, runner=longer)
    assert [op for op, _ in longer.calls] == ["sep_conv_3x3"]


def test_fewer_distinct_genotypes_than_asked_trains_all_and_says_so(search, caplog):
    with caplog.at_level(logging.WARNING, logger="nnunet_iac.selection.select_genotype"):
        selection = select_genotype(search, JOB, SelectOptions(candidates=5), env={}, runner=FakeTrain())
    assert len(selection["candidates"]) == 3 and selection["distinct_genotypes"] == 3
    assert "3 distinct genotype(s), fewer than the 5 candidates asked for" in caplog.text


def test_a_failing_trial_names_its_log(search):
    with pytest.raises(TrialError, match=r"exited with code 1\. Its output is in .*candidate_\w+/train\.log"):
        select_genotype(search, JOB, SelectOptions(candidates=2), env={}, runner=FakeTrain(fail_op="dil_conv_3x3"))
    assert not (search / SELECTED_FILE).exists()


def test_missing_split_and_missing_base_stop_before_any_training(search):
    train = FakeTrain()
    base = Path(json.loads((search / "iac_settings.json").read_text())["base_checkpoint"])
    base.unlink()
    with pytest.raises(SelectionError, match=r"base checkpoint .* is missing\. Restore it"):
        select_genotype(search, JOB, SelectOptions(), env={}, runner=train)
    (search / "search_split.json").unlink()
    with pytest.raises(SelectionError, match="search_split.json is missing.*nnUNetTrainerIACSearch"):
        select_genotype(search, JOB, SelectOptions(), env={}, runner=train)
    assert train.calls == []


def test_options_below_one_are_refused_with_the_option_named(search):
    with pytest.raises(SelectionError, match="--candidates 0 must be 1 or more"):
        select_genotype(search, JOB, SelectOptions(candidates=0), env={}, runner=FakeTrain())


def test_trial_environment_keeps_the_users_knobs_and_sets_the_trials_own(tmp_path):
    user = {"nnUNet_IAC_mode": "replace", "nnUNet_IAC_genotype_epoch": "7", "nnUNet_IAC_retrain_validation": "0",
            "nnUNet_preprocessed": "/pre", "nnUNet_extTrainer": "/mine"}
    env = trial_environment(user, tmp_path / "r", tmp_path / "g.json", tmp_path / "b.pth",
                            SelectOptions(epochs=3, iterations=4, val_iterations=1))
    assert env["nnUNet_IAC_mode"] == "replace" and env["nnUNet_preprocessed"] == "/pre"
    assert "nnUNet_IAC_genotype_epoch" not in env  # the candidate's genotype file is the genotype
    assert env["nnUNet_IAC_retrain_validation"] == "1"  # the score is nnU-Net's final validation
    assert env["nnUNet_extTrainer"].split(":")[-1] == "/mine"
    assert (env["nnUNet_IAC_epochs"], env["nnUNet_IAC_iterations_per_epoch"],
            env["nnUNet_IAC_val_iterations_per_epoch"]) == ("3", "4", "1")


# ---- one real run through nnUNetv2_train ------------------------------------------------------------------

@pytest.mark.integration
def test_select_through_nnunet_trains_on_train_search_and_scores_on_val_search(workspace):
    from nnunet_iac.selection.select_genotype import SELECT_DIR
    from nnunet_workspace import DATASET, DATASET_ID

    fold = "2"  # a fold no other test uses
    base = workspace.train_base("2d") / "fold_0" / "checkpoint_final.pth"
    workspace.run("nnUNetv2_train", str(DATASET_ID), "2d", fold, "-tr", "nnUNetTrainerIACSearch", "-device", "cpu",
                  env={"nnUNet_IAC_base": str(base), "nnUNet_IAC_epochs": "2", "nnUNet_IAC_warmup_epochs": "0",
                       "nnUNet_IAC_iterations_per_epoch": "2", "nnUNet_IAC_val_iterations_per_epoch": "1",
                       "nnUNet_IAC_stable_epochs": "0", "nnUNet_IAC_search_validation": "0"})
    search = workspace.results / "nnUNetTrainerIACSearch__nnUNetPlans__2d" / f"fold_{fold}"
    history = json.loads((search / "search_history.json").read_text())
    if len({genotype_key(Genotype.from_dict(r["genotype"])) for r in history}) < 2:
        history[-1]["genotype"] = genotype("dil_conv_3x3", history[-1]["epoch"])  # two distinct candidates
        (search / "search_history.json").write_text(json.dumps(history))
    genotype_before = (search / "genotype.json").read_bytes()
    result = workspace.run("nnunet-iac", "select", "-d", str(DATASET_ID), "-c", "2d", "-f", fold, "--candidates",
                           "2", "--epochs", "1", "--iterations", "2", "--val-iterations", "1", "--device", "cpu")
    split = json.loads((search / "search_split.json").read_text())
    folds = json.loads((workspace.root / "preprocessed" / DATASET / "splits_final.json").read_text())
    selection = json.loads((search / SELECTION_FILE).read_text())
    assert len(selection["candidates"]) == 2 and selection["job"]["fold"] == fold
    for row in selection["candidates"]:
        fold_folder = Path(row["trial_folder"]) / DATASET / f"{TRIAL_TRAINER}__nnUNetPlans__2d" / f"fold_{fold}"
        assert fold_folder.parent.parent.parent.parent == search / SELECT_DIR
        log = "".join(p.read_text() for p in fold_folder.glob("training_log_*.txt"))
        assert f"training on {len(split['train_search'])} train_search cases {split['train_search']}" in log
        summary = json.loads((fold_folder / "validation" / "summary.json").read_text())
        validated = sorted(Path(c["reference_file"]).name.split(".")[0] for c in summary["metric_per_case"])
        assert validated == sorted(split["val_search"])
        assert not set(validated) & set(folds[int(fold)]["val"])
        assert row["val_search_dice"] == summary["foreground_mean"]["Dice"]
        assert json.loads((fold_folder / "iac_settings.json").read_text())["epochs"] == 1
    best = max(selection["candidates"], key=lambda r: r["val_search_dice"])
    assert selection["selected"] == best["name"]
    assert Genotype.load(search / SELECTED_FILE).to_dict()["nodes"] == best["genotype"]["nodes"]
    assert (search / "genotype.json").read_bytes() == genotype_before
    assert "nnUNet_IAC_genotype=" in result.stdout and SELECTED_FILE in result.stdout


def test_a_trial_records_and_checks_the_cell_options_its_genotype_was_searched_with(search):
    """Genotypes that record their cell options (version 2): the trial's record holds those, not the
    environment's defaults, and a variable that contradicts them stops select before any training."""
    from nnunet_iac.cells.operations import search_space
    from nnunet_iac.nnunet.settings import GenotypeOptionsConflict
    from nnunet_iac.selection.trial import RECORD_FILE

    options = {"k": 2, "width_divisor": 2, "mode": "residual", "init": "zero"}
    rows = json.loads((search / "search_history.json").read_text())
    for row in rows:
        row["genotype"] = {**row["genotype"], "version": 2, "cell_options": options,
                           "search_space": list(search_space())}
    (search / "search_history.json").write_text(json.dumps(rows))
    select_genotype(search, JOB, SelectOptions(candidates=1, epochs=1, iterations=2), env={}, runner=FakeTrain())
    record = json.loads(next((search / "select").rglob(RECORD_FILE)).read_text())
    assert (record["settings"]["k"], record["settings"]["width_divisor"]) == (2, 2)
    train = FakeTrain()
    with pytest.raises(GenotypeOptionsConflict, match="nnUNet_IAC_width_divisor=4 contradicts"):
        select_genotype(search, JOB, SelectOptions(candidates=1, epochs=2, iterations=2),
                        env={"nnUNet_IAC_width_divisor": "4"}, runner=train)
    assert not train.calls
