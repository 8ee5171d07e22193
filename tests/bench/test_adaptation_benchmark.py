"""``nnunet-iac benchmark SOURCE --target TARGET`` (issue 36): the zero-shot gap through nnU-Net's own commands,
the target preprocessed with the source's moved plans, the support sets as folds of the target."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

from nnunet_iac.benchmark.run_benchmark import main as benchmark_main
from nnunet_iac.tools.synthetic_dataset import make_synthetic_dataset

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def adapted(tmp_path_factory):
    root = tmp_path_factory.mktemp("adaptation")
    source = make_synthetic_dataset(root / "raw", 995, "Src", num_cases=8, seed=1)
    target = make_synthetic_dataset(root / "raw", 996, "Tgt", num_cases=6, seed=2, num_test_cases=2)
    out = root / "out"
    result = subprocess.run([sys.executable, "-m", "benchmarks.run_benchmark", str(source), "--target", str(target),
                             "--out", str(out), "--smoke", "--shots", "2", "--support-seeds", "1", "--controls",
                             "norm", "--random-genotypes", "1"],
                            cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 0, f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return out, json.loads((out / "zero_shot.json").read_text())


@pytest.mark.integration
def test_every_arm_trains_on_the_support_set_from_the_untouched_source_base_and_is_reported(adapted):
    out, results = adapted
    target = out / "nnUNet_results" / "Dataset996_Tgt"
    fold = next(s["fold"] for s in results["support_sets"] if s["shots"] == "2")
    record = json.loads((out / "folds" / f"fold_{fold}.json").read_text())
    assert set(record["dice"]) == {"iac", "control_norm", "random_seed12345", "target_only", "iac_long_retrain"}
    for arm, dice in record["dice"].items():
        assert len(dice["target_test"]) == 2 and len(dice["source_forgetting"]) == 2, arm
    # equal batches: the control and the target-only model trained for IAC's batches, rounded up to epochs
    assert record["control_epochs"] * 2 >= record["batches"]["batches"]
    # the diagnostic: the searched genotype retrained for the controls' epochs, its search on top
    long_log = (target / f"nnUNetTrainerIACRetrain__nnUNetPlans_bench_fold{fold}_longretrain__2d" / f"fold_{fold}")
    assert json.loads((long_log / "iac_settings.json").read_text())["epochs"] == record["control_epochs"]
    assert record["batches"]["iac_long_retrain"] > record["batches"]["batches"]
    signal = record["search_signal"]  # how the search split the 2 cases, and its signal per epoch
    assert (signal["train_search"], signal["val_search"]) == (1, 1)
    assert [row["phase"] for row in signal["epochs"]] == ["warmup", "search"]
    assert signal["epochs"][1]["snr_alpha"] is not None
    settings = json.loads((target / f"nnUNetTrainerIACRetrain__nnUNetPlans_bench_fold{fold}__2d" / f"fold_{fold}" /
                           "iac_settings.json").read_text())  # one plans name per support set
    assert "Dataset995_Src" in settings["base_checkpoint"]
    params = record["parameters"]
    assert params["control_norm"]["trained"] < params["target_only"]["trained"] == params["target_only"]["base"]
    base = out / "nnUNet_results" / "Dataset995_Src" / "nnUNetTrainerBench__nnUNetPlans_bench__2d" / "fold_0"
    import hashlib
    digest = hashlib.sha256((base / "checkpoint_final.pth").read_bytes()).hexdigest()
    assert (out / "base_checkpoint.sha256").read_text().strip() == digest == results["base_checkpoint_sha256"]
    report = json.loads((out / "adaptation.json").read_text())
    two = report["shots"]["2"]
    assert two["best_control"] == "control_norm" and "iac - random_mean" in two["comparisons"]
    assert two["target_check"]["met"] in (True, False)
    assert "## 2 target case(s), 1 support set(s)" in (out / "adaptation.md").read_text()
    assert set(two["diagnostics"]) == {"iac_long_retrain - iac", "iac_long_retrain - control_norm"}
    assert f"fold {fold}: 1 train_search / 1 val_search cases, alpha SNR" in (out / "adaptation.md").read_text()
    for figure in ("adaptation_curve.png", "adaptation_forest.png"):
        assert (out / figure).read_bytes()[:4] == b"\x89PNG", figure


@pytest.mark.integration
def test_the_target_is_preprocessed_with_the_sources_plans_and_the_gap_is_reported(adapted):
    out, results = adapted
    source_plans = json.loads((out / "nnUNet_preprocessed" / "Dataset995_Src" / "nnUNetPlans_bench.json").read_text())
    target_plans = json.loads((out / "nnUNet_preprocessed" / "Dataset996_Tgt" / "nnUNetPlans_bench.json").read_text())
    assert target_plans["dataset_name"] == "Dataset996_Tgt"
    assert target_plans["configurations"] == source_plans["configurations"]  # the base runs on target data as is
    gap = results["zero_shot_gap"]
    pair = gap["target_only_minus_base"]
    assert pair["n"] == 2 and pair["mean"] == pytest.approx(gap["target_only_target_test"] - gap["base_target_test"])
    assert results["sets"] == {"source_validation": 2, "target_test": 2}
    assert "Target-only - base on the target test" in (out / "zero_shot.md").read_text()


@pytest.mark.integration
def test_support_sets_are_folds_of_the_target_and_the_target_only_model_trained_on_the_whole_pool(adapted):
    out, results = adapted
    sets = {(s["shots"], s["seed"]): s for s in results["support_sets"]}
    assert set(sets) == {("2", 0), ("all", 0)}  # the whole pool: the gap's target-only model
    splits = json.loads((out / "nnUNet_preprocessed" / "Dataset996_Tgt" / "splits_final.json").read_text())
    whole = sets[("all", 0)]
    assert splits[whole["fold"]]["train"] == whole["cases"] and len(whole["cases"]) == 6
    trained = out / "nnUNet_results" / "Dataset996_Tgt" / "nnUNetTrainerBench__nnUNetPlans_bench__2d"
    assert (trained / f"fold_{whole['fold']}" / "checkpoint_final.pth").is_file()


def test_the_adaptation_benchmark_refuses_a_target_without_a_test_set_and_shared_ids(tmp_path, capsys):
    source = make_synthetic_dataset(tmp_path / "raw", 997, "Src", num_cases=4)
    target = make_synthetic_dataset(tmp_path / "raw", 998, "Tgt", num_cases=4)  # no labelled test cases
    for sub in ("imagesTs", "labelsTs"):
        (target / sub).rmdir()
    code = benchmark_main([str(source), "--target", str(target), "--out", str(tmp_path / "out"), "--smoke"])
    assert code == 2 and "The target has no labelled test set" in capsys.readouterr().err
    same = make_synthetic_dataset(tmp_path / "other", 997, "Tgt", num_cases=4, num_test_cases=1)
    code = benchmark_main([str(source), "--target", str(same), "--out", str(tmp_path / "out"), "--smoke"])
    assert code == 2 and "same dataset id 997" in capsys.readouterr().err
    good = make_synthetic_dataset(tmp_path / "raw", 999, "Tgt", num_cases=4, num_test_cases=1)
    code = benchmark_main([str(source), "--target", str(good), "--out", str(tmp_path / "out"), "--shots", "5,x"])
    assert code == 2 and "neither a positive number" in capsys.readouterr().err


@pytest.mark.integration
def test_a_users_own_base_is_the_base_read_only_and_its_plans_move_to_the_target(adapted, tmp_path):
    """--base MODEL_FOLDER: nothing trained on the source, the user's checkpoint is the one hashed and predicted,
    its validation fold gives the source cases, its plans (at the arms' batch) are the target's, and the folder is
    left as it was."""
    import hashlib
    import shutil

    out, results = adapted
    trained = out / "nnUNet_results" / "Dataset995_Src" / "nnUNetTrainerBench__nnUNetPlans_bench__2d"
    # names and a plans batch of its own: a run that used the benchmark's base folder or plans batch would fail here
    mine = tmp_path / "my_results" / "Dataset995_Src" / "nnUNetTrainerBench__myPlans__2d"
    shutil.copytree(trained, mine)
    plans = json.loads((mine / "plans.json").read_text())
    plans["configurations"]["2d"]["batch_size"] = 7
    (mine / "plans.json").write_text(json.dumps(plans))
    val = json.loads((out / "nnUNet_preprocessed" / "Dataset995_Src" / "splits_final.json").read_text())[0]["val"]
    (mine / "fold_0" / "validation").mkdir(exist_ok=True)
    ending = json.loads((mine / "dataset.json").read_text())["file_ending"]
    for case in val:  # what nnU-Net's final validation writes: one prediction per validation case
        shutil.copy(out / "nnUNet_raw" / "Dataset995_Src" / "labelsTr" / f"{case}{ending}",
                    mine / "fold_0" / "validation" / f"{case}{ending}")
    before = {p.relative_to(mine): p.read_bytes() for p in mine.rglob("*") if p.is_file()}
    second = tmp_path / "with_my_base"
    result = subprocess.run([sys.executable, "-m", "benchmarks.run_benchmark", str(out.parent / "raw" / "Dataset995_Src"),
                             "--target", str(out.parent / "raw" / "Dataset996_Tgt"), "--out", str(second), "--smoke",
                             "--shots", "2", "--support-seeds", "1", "--base", str(mine), "--zero-shot-only"],
                            cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 0, f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    gap = json.loads((second / "zero_shot.json").read_text())
    assert "base training" not in gap["stages"] and "plan and preprocess source" not in gap["stages"]
    assert gap["base_checkpoint_sha256"] == hashlib.sha256((mine / "fold_0" / "checkpoint_final.pth").read_bytes()
                                                           ).hexdigest()
    assert gap["benchmark"]["base"]["model_folder"] == str(mine)
    assert gap["sets"]["source_validation"] == len(val)
    target_plans = json.loads((second / "nnUNet_preprocessed" / "Dataset996_Tgt" / "nnUNetPlans_bench.json").read_text())
    mine_plans = json.loads((mine / "plans.json").read_text())
    assert target_plans["configurations"]["2d"]["architecture"] == mine_plans["configurations"]["2d"]["architecture"]
    assert target_plans["dataset_name"] == "Dataset996_Tgt"
    assert target_plans["configurations"]["2d"]["batch_size"] == 2 == gap["benchmark"]["budget"]["batch_size"]
    assert gap["benchmark"]["base"]["plans_batch_size"] == 7
    assert not (second / "nnUNet_results" / "Dataset995_Src" / trained.name).exists()  # no base trained here
    assert (second / "nnUNet_results" / "Dataset995_Src" / mine.name).resolve() == mine  # linked, not copied
    after = {p.relative_to(mine): p.read_bytes() for p in mine.rglob("*") if p.is_file()}
    assert after == before
    assert f"Base: {mine}, fold 0 (yours" in (second / "zero_shot.md").read_text()


@pytest.mark.integration
def test_report_only_rewrites_the_report_from_the_finished_support_sets(adapted, capsys):
    """--report-only (e.g. beside a running run): adaptation.md and the figures from folds/fold_<F>.json alone,
    nothing trained; refused with the fix where the run has no zero-shot results yet."""
    out, _ = adapted
    for name in ("adaptation.md", "adaptation.json", "adaptation_forest.png"):
        (out / name).unlink()
    stages = (out / "stages.json").read_text()
    source, target = out.parent / "raw" / "Dataset995_Src", out.parent / "raw" / "Dataset996_Tgt"
    assert benchmark_main([str(source), "--target", str(target), "--out", str(out), "--smoke", "--report-only"]) == 0
    assert "## 2 target case(s), 1 support set(s)" in (out / "adaptation.md").read_text()
    assert "| iac_long_retrain - iac |" in (out / "adaptation.md").read_text()
    assert (out / "adaptation_forest.png").is_file() and (out / "stages.json").read_text() == stages
    empty = out.parent / "empty_run"
    assert benchmark_main([str(source), "--target", str(target), "--out", str(empty), "--smoke", "--report-only"]) == 2
    assert "--zero-shot-only" in capsys.readouterr().err
