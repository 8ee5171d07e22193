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
                             "--out", str(out), "--smoke", "--shots", "2,all", "--support-seeds", "2"],
                            cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 0, f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return out, json.loads((out / "zero_shot.json").read_text())


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
    assert set(sets) == {("2", 0), ("2", 1), ("all", 0)}
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
