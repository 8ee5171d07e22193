"""``--regime paper`` end to end (smoke budget): every arm in the IAC paper's recipe, best epochs chosen on held-out
training cases, an evolution re-judged by Stage-III trials in that recipe, and the regime guarded on --resume."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

from nnunet_iac.benchmark.arms import base_arm, control_arm, evolution_trials_arm, iac_arm, random_arm, search_arm
from nnunet_iac.benchmark.regimes import PAPER
from nnunet_iac.benchmark.run_benchmark import main as benchmark_main
from nnunet_iac.nnunet.checkpointing import safe_load
from nnunet_iac.nnunet.selection_split import selection_split
from nnunet_iac.tools.synthetic_dataset import make_synthetic_dataset

REPO = Path(__file__).resolve().parents[2]

DATASET = "Dataset991_IACSynthetic"
#: an evolution over two levels, small enough for the smoke budget
EVOLUTION = "evo:strategy=nsga2,evolution_levels=on,levels=0,1,evolution_population=3,evolution_generations=1"


@pytest.fixture(scope="module")
def paper(tmp_path_factory):
    root = tmp_path_factory.mktemp("paper")
    raw = make_synthetic_dataset(root / "source", 991, num_cases=12, num_test_cases=2)
    out = root / "out"
    result = subprocess.run([sys.executable, "-m", "benchmarks.run_benchmark", str(raw), "--out", str(out),
                             "--test-images", str(raw / "imagesTs"), "--test-labels", str(raw / "labelsTs"),
                             "--smoke", "--regime", "paper", "--controls", "restart,decoder",
                             "--random-genotypes", "1", "--iac-variant", EVOLUTION, "--select-evolution", "evo"],
                            cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 0, f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return raw, out, json.loads((out / "results.json").read_text())


def _fold(out, arm):
    return arm.fold(out / "nnUNet_results" / DATASET)


@pytest.mark.integration
def test_paper_regime_trains_every_arm_with_the_papers_trainers_and_predicts_with_best_checkpoints(paper):
    _, out, results = paper
    assert results["benchmark"]["regime"] == "paper" and results["benchmark"]["checkpoint"] == "checkpoint_best.pth"
    arms = [base_arm(PAPER), control_arm("restart", 12345, 12345, PAPER), control_arm("decoder", 12345, 12345, PAPER),
            iac_arm(12345, PAPER), random_arm(12345, PAPER), iac_arm(12345, PAPER, "evo"),
            evolution_trials_arm(12345, PAPER, "evo")]
    assert set(results["arms"]) == {arm.name for arm in arms}
    for arm in arms:
        best = safe_load(_fold(out, arm) / "checkpoint_best.pth")
        assert best["trainer_name"] == arm.trainer
        assert best["inference_allowed_mirroring_axes"] is None  # nnU-Net's NoDA: no augmentation, no mirroring
    predicts = [s["command"] for name, s in results["stages"].items() if name.startswith("predict (")]
    assert len(predicts) == len(arms) and all("-chk checkpoint_best.pth" in c for c in predicts)
    report = (out / "results.md").read_text()  # the report describes this regime's controls, not the short one's
    assert PAPER.controls_described in report and "restarts nnU-Net's schedule" not in report
    # one epoch rule (issue 37): a control chooses its best epoch among its last retrain-epochs epochs only
    retrain_epochs, control_epochs = results["budget"]["retrain_epochs"], results["budget"]["control_epochs"]
    assert control_epochs > retrain_epochs
    for kind in ("restart", "decoder"):
        best = safe_load(_fold(out, control_arm(kind, 12345, 12345, PAPER)) / "checkpoint_best.pth")
        assert best["current_epoch"] > control_epochs - retrain_epochs  # saved as its epoch index + 1
    assert PAPER.epoch_rule(retrain_epochs) in report


@pytest.mark.integration
def test_paper_regime_holds_the_same_cases_out_of_every_arm_to_choose_its_best_epoch(paper):
    _, out, _ = paper
    splits = json.loads((out / "nnUNet_preprocessed" / DATASET / "splits_final.json").read_text())
    fit, selection = selection_split(splits[0]["train"])
    for arm in (base_arm(PAPER), control_arm("restart", 12345, 12345, PAPER), iac_arm(12345, PAPER)):
        log = next(_fold(out, arm).glob("training_log_*.txt")).read_text()
        assert f"training on {len(fit)} of the fold's {len(fit) + len(selection)} training cases" in log
    search_split = json.loads((_fold(out, search_arm(12345, PAPER)) / "search_split.json").read_text())
    assert sorted(search_split["train_search"] + search_split["val_search"]) == fit


@pytest.mark.integration
def test_paper_regime_stage_three_uses_the_papers_optimizer_and_starts_from_the_best_base(paper):
    _, out, _ = paper
    settings = json.loads((_fold(out, iac_arm(12345, PAPER)) / "iac_settings.json").read_text())
    assert settings["retrain_optimizer"] == "adam_constant"
    assert settings["base_checkpoint"].endswith("checkpoint_best.pth")
    control_log = next(_fold(out, control_arm("restart", 12345, 12345, PAPER)).glob("training_log_*.txt")).read_text()
    assert "checkpoint_best.pth" in control_log


def test_a_folder_is_resumed_only_in_its_own_regime(tmp_path, capsys):
    raw = make_synthetic_dataset(tmp_path / "source", 992, num_cases=4, num_test_cases=1)
    out = tmp_path / "out"
    out.mkdir()
    (out / "regime.json").write_text(json.dumps({"regime": "short"}))
    code = benchmark_main([str(raw), "--out", str(out), "--resume", "--regime", "paper", "--smoke"])
    assert code == 2 and "holds a run of --regime short" in capsys.readouterr().err
    (out / "regime.json").unlink()
    (out / "stages.json").write_text("{}")  # a run from before regimes: short
    code = benchmark_main([str(raw), "--out", str(out), "--resume", "--regime", "paper", "--smoke"])
    assert code == 2 and "holds a run of --regime short" in capsys.readouterr().err


@pytest.mark.integration
def test_the_evolution_is_rejudged_by_trials_of_the_papers_stage_three_on_val_search(paper):
    _, out, results = paper
    search = _fold(out, search_arm(12345, PAPER, "evo"))
    selection = json.loads((search / "genotype_selection.json").read_text())
    split = json.loads((search / "search_split.json").read_text())
    levels = [tuple(c["levels"]) for c in selection["candidates"]]
    assert len(levels) == len({len(x) for x in levels}) >= 1  # one trial per number of levels
    for row in selection["candidates"]:
        trial = Path(row["trial_folder"]) / DATASET / f"{PAPER.trial_trainer}__nnUNetPlans_bench_evo_seed12345__2d" \
            / "fold_0"
        log = "".join(p.read_text() for p in trial.glob("training_log_*.txt"))
        assert f"training on {len(split['train_search'])} train_search cases" in log
        assert "validating the best epoch's weights" in log
        summary = json.loads((trial / "validation" / "summary.json").read_text())
        assert row["val_search_dice"] == summary["foreground_mean"]["Dice"]
        assert len(summary["metric_per_case"]) == len(split["val_search"])
    retrained = _fold(out, evolution_trials_arm(12345, PAPER, "evo"))
    settings = json.loads((retrained / "iac_settings.json").read_text())
    chosen = next(c for c in selection["candidates"] if c["name"] == selection["selected"])
    assert settings["genotype"].endswith("genotype_selected.json") and settings["retrain_optimizer"] == "adam_constant"
    assert settings["levels"] == ",".join(map(str, chosen["levels"]))
    record = results["evolution_trials"]["iac_evo_trials"]["seeds"]["12345"]
    assert record["selected"] == selection["selected"] and record["predict"]["value"] > 0
    assert "Evolutions re-judged by Stage-III trials" in (out / "results.md").read_text()


def test_select_evolution_must_name_an_evolutionary_variant_of_the_run(tmp_path, capsys):
    raw = make_synthetic_dataset(tmp_path / "source", 993, num_cases=4, num_test_cases=1)
    code = benchmark_main([str(raw), "--out", str(tmp_path / "out"), "--regime", "paper", "--select-evolution", "evo",
                           "--smoke"])
    assert code == 2 and "no IAC variant of that name" in capsys.readouterr().err
    code = benchmark_main([str(raw), "--out", str(tmp_path / "out"), "--iac-variant", "evo:strategy=lth",
                           "--select-evolution", "evo", "--smoke"])
    assert code == 2 and "give it strategy=nsga2" in capsys.readouterr().err
