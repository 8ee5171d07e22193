"""scripts/publish_adaptation_fold.py: a finished support set's record copied into the repository with its
provenance, and the search's split and signal added to a record written before the benchmark kept them."""
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _run_folder(tmp_path: Path, with_signal: bool) -> Path:
    run = tmp_path / "run"
    search = run / "nnUNet_results" / "Dataset904_T" / "nnUNetTrainerIACSearch__nnUNetPlans_bench_fold3__2d" / "fold_3"
    search.mkdir(parents=True)
    (search / "search_split.json").write_text(json.dumps({"train_search": ["a", "b"], "val_search": ["c", "d", "e"]}))
    (search / "search_history.json").write_text(json.dumps([
        {"epoch": 0, "phase": "warmup", "snr_alpha": None, "snr_beta": None, "arch_loss": None, "val_loss": 0.1,
         "genotype": {}}, {"epoch": 1, "phase": "search", "snr_alpha": 2.5, "snr_beta": 7.0, "arch_loss": -0.2,
                           "val_loss": -0.3, "genotype": {}}]))
    retrain = search.parents[1] / "nnUNetTrainerIACRetrain__nnUNetPlans_bench_fold3__2d" / "fold_3"
    retrain.mkdir(parents=True)
    (retrain / "training_log_2026_12_7_9_5_3.txt").write_text(
        "2026-12-07 09:05:04.1: Epoch 0 \n2026-12-07 09:05:04.2: Current learning rate: 0.001 \n"
        "2026-12-07 09:05:30.3: train_loss 3.66 \n2026-12-07 09:05:30.4: val_loss -0.59 \n")
    record = {"fold": 3, "shots": "5", "support_seed": 1,
              "dice": {"iac": {"target_test": {"x": 0.5}}, "control": {"target_test": {"x": 0.6}}}}
    if with_signal:
        record["search_signal"] = {"kept": True}
    (run / "folds").mkdir()
    (run / "folds" / "fold_3.json").write_text(json.dumps(record))
    (run / "zero_shot.json").write_text(json.dumps({
        "benchmark": {"source": "Dataset903_S", "target": "Dataset904_T", "device": "cpu", "budget": {"b": 1},
                      "date": "2026-12-06T21:36:44", "cpu_count": 2},
        "base_checkpoint_sha256": "ab" * 32}))
    return run


def test_a_fold_is_published_with_its_provenance_and_the_searchs_signal(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT / "scripts"))
    from publish_adaptation_fold import main

    run = _run_folder(tmp_path, with_signal=False)
    assert main([str(run), "3", str(tmp_path / "docs"), "--command", "nnunet-iac benchmark S --target T",
                 "--commit", "abc1234"]) == 0
    published = json.loads((tmp_path / "docs" / "fold_3.json").read_text())
    assert (published["command"], published["commit"]) == ("nnunet-iac benchmark S --target T", "abc1234")
    assert (published["run_last_started"], published["machine"]) == ("2026-12-06T21:36:44", "2 CPU cores, device cpu")
    assert published["record"]["dice"]["iac"] == {"target_test": {"x": 0.5}}
    # the arm with a training log gets its losses; the control's folder is gone, so it has none
    assert published["record"]["training_fit"] == {"iac": {"epoch": [0], "train_loss": [3.66], "val_loss": [-0.59],
                                                           "learning_rate": [0.001]}}
    signal = published["record"]["search_signal"]
    assert (signal["train_search"], signal["val_search"]) == (2, 3)
    assert [row["snr_alpha"] for row in signal["epochs"]] == [None, 2.5] and "genotype" not in signal["epochs"][1]
    kept = _run_folder(tmp_path / "second", with_signal=True)
    main([str(kept), "3", str(tmp_path / "docs2"), "--command", "c", "--commit", "d"])
    assert json.loads((tmp_path / "docs2" / "fold_3.json").read_text())["record"]["search_signal"] == {"kept": True}
