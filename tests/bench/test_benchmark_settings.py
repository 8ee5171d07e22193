"""--iac-setting (remedy settings for the benchmark's IAC arms) and the gradient-signal summary of a run."""
import json

import pytest

from nnunet_iac.benchmark.arms import ArmRunner, parse_iac_settings
from nnunet_iac.benchmark.budgets import SMOKE
from nnunet_iac.benchmark.measures import signal_summary
from nnunet_iac.benchmark.report import budget_table, signal_table
from nnunet_iac.nnunet.settings import SettingsError


def test_iac_settings_become_variables_that_reach_search_and_retrain_but_not_the_budget(tmp_path):
    settings = parse_iac_settings(["init=gate", "nnUNet_IAC_retrain_base=decoder"])
    assert settings == {"nnUNet_IAC_init": "gate", "nnUNet_IAC_retrain_base": "decoder"}
    arms = ArmRunner(runner=None, dataset_id=1, results=tmp_path, budget=SMOKE, device="cpu", iac_settings=settings)
    env = arms.iac_env(seed=3, epochs=SMOKE.retrain_epochs)
    assert env["nnUNet_IAC_init"] == "gate" and env["nnUNet_IAC_retrain_base"] == "decoder"
    assert env["nnUNet_IAC_seed"] == "3" and env["nnUNet_IAC_epochs"] == str(SMOKE.retrain_epochs)


@pytest.mark.parametrize("item, message", [
    ("init", "is not NAME=VALUE"),
    ("colour=blue", "is not a setting"),
    ("epochs=3", "the benchmark sets nnUNet_IAC_epochs itself"),
    ("seed=1", "the benchmark sets nnUNet_IAC_seed itself"),
    ("init=huge", "is not allowed; use one of zero, small, gate"),
    ("arch_lr=fast", "is not a number"),
])
def test_bad_iac_settings_are_refused_before_anything_runs(item, message):
    with pytest.raises(SettingsError, match=message):
        parse_iac_settings([item])


def _history_row(epoch, phase, snr_alpha, snr_projection):
    return {"epoch": epoch, "phase": phase, "alpha_entropy": 2.0794 - epoch / 100, "snr_alpha": snr_alpha,
            "snr_beta": None if snr_alpha is None else 1.0, "snr_projection": snr_projection,
            "projection_norm": [0.1 * (epoch + 1)] * len(snr_projection)}


def test_signal_summary_counts_epochs_after_warm_up_above_the_noise_floor(tmp_path):
    search, retrain = tmp_path / "search", tmp_path / "retrain"
    search.mkdir(), retrain.mkdir()
    rows = [_history_row(0, "warmup", None, [9.0, 9.0]), _history_row(1, "search", 0.8, [1.5, 0.9]),
            _history_row(2, "search", 3.0, [2.5, None]), _history_row(3, "search", 1.2, [0.5, 1.1])]
    (search / "search_history.json").write_text(json.dumps(rows))
    (retrain / "signal_history.json").write_text(json.dumps([{"epoch": 0, "snr_projection": [4.0, 0.5],
                                                              "projection_norm": [1.0, 2.0]}]))
    summary = signal_summary(search, retrain, warmup_epochs=1)
    alpha = summary["search"]["alpha"]
    assert alpha["epochs"] == 3 and alpha["median"] == 1.2
    assert alpha["above_1"] == pytest.approx(2 / 3) and alpha["above_2"] == pytest.approx(1 / 3)
    first, second = summary["search"]["projection"]
    assert first["epochs"] == 3 and first["median"] == 1.5, "the warm-up epoch's 9.0 must not count"
    assert second["epochs"] == 2 and second["above_1"] == 0.5
    assert summary["search"]["alpha_entropy"] == [2.0794, pytest.approx(2.0494)]
    assert [p["median"] for p in summary["retrain"]["projection"]] == [4.0, 0.5]
    table = "\n".join(signal_table({"iac_seeds": {"7": {"signal": summary}}}))
    assert "| 7 | 1.20 (67% / 33%) |" in table


def test_signal_summary_of_a_retrain_without_signal_rows(tmp_path):
    (tmp_path / "search_history.json").write_text(json.dumps([_history_row(0, "search", 2.0, [3.0])]))
    summary = signal_summary(tmp_path, tmp_path / "no_retrain", warmup_epochs=0)
    assert summary["retrain"]["projection"] == [{"epochs": 0, "median": None, "above_1": None, "above_2": None}]


def _budget_results(control_epochs: int, iac_batches: int) -> dict:
    stage = {"paper": "p", "nnunet_default": "n"}
    return {"budget": {"iterations_per_epoch": 50, "base_epochs": 30, "search_epochs": 7, "warmup_epochs": 2,
                       "retrain_epochs": 16, "control_epochs": control_epochs, "iac_batches": {"batches": iac_batches},
                       "patch_size_used": [56, 40], "batch_size": 32, "val_iterations_per_epoch": 5, "tta": False,
                       "step_size": 0.5},
            "paper_budget": {name: stage for name in ("base", "search", "retrain", "control")}}


def test_budget_table_says_when_a_kept_control_trained_fewer_batches_than_the_iac_arm():
    """A --resume with a longer retrain keeps the earlier control: the report must not claim it matched."""
    one_sitting = "\n".join(budget_table(_budget_results(control_epochs=16, iac_batches=800)))
    assert "16 epochs x 50 iterations (>= the 800 batches" in one_sitting
    resumed = "\n".join(budget_table(_budget_results(control_epochs=16, iac_batches=1150)))
    assert "16 epochs x 50 iterations (FEWER than the 1150 batches" in resumed


@pytest.mark.parametrize("value, message", [("pcdarts,annealing", "unknown strategy"), ("lth,shapley", "keep it in"),
                                            ("", "none given")])
def test_bad_strategies_are_refused_by_the_parser(value, message, capsys):
    from nnunet_iac.benchmark.run_benchmark import build_parser
    with pytest.raises(SystemExit):
        build_parser().parse_args(["data", "--out", "o", "--strategies", value])
    assert message in capsys.readouterr().err


@pytest.mark.parametrize("value, message", [("adas", "give NAME:SETTING=VALUE"), ("Adas:init=gate", "lower-case"),
                                            ("selected:init=gate", "not 'selected'"),
                                            ("a:colour=blue", "is not a setting"), ("a:seed=3", "sets nnUNet_IAC_seed")])
def test_bad_iac_variants_are_refused_by_the_parser(value, message, capsys):
    from nnunet_iac.benchmark.run_benchmark import build_parser
    with pytest.raises(SystemExit):
        build_parser().parse_args(["data", "--out", "o", "--iac-variant", value])
    assert message in capsys.readouterr().err


def _empty_decathlon_task(tmp_path):
    """A Decathlon task folder with no cases: enough for the benchmark's input checks and arm lists."""
    source = tmp_path / "Task04_Hippocampus"
    (source / "imagesTr").mkdir(parents=True)
    (source / "labelsTr").mkdir()
    (source / "dataset.json").write_text(json.dumps({"name": "Hippocampus", "modality": {"0": "MRI"},
                                                      "labels": {"0": "background", "1": "a"}, "training": []}))
    return source


def test_strategies_and_variants_become_iac_variants_and_the_strategy_setting_cannot_be_given_twice(tmp_path):
    from nnunet_iac.benchmark.arms import IACVariant
    from nnunet_iac.benchmark.datasets import DatasetError
    from nnunet_iac.benchmark.run_benchmark import Benchmark, build_parser
    args = build_parser().parse_args(["d", "--out", "o", "--strategies", "shapley,pcdarts,lth", "--iac-variant",
                                      "adas:cell_optimizer=adas,adas_beta=0.9"])
    assert [v.name for v in Benchmark.variants.fget(type("B", (), {"args": args})())] == ["shapley", "lth", "adas"]
    assert args.strategies[0] == IACVariant("shapley", (("nnUNet_IAC_strategy", "shapley"),))
    assert args.iac_variant[0].env == {"nnUNet_IAC_cell_optimizer": "adas", "nnUNet_IAC_adas_beta": "0.9"}
    # a value that is itself a comma list (levels) stays whole
    lean = build_parser().parse_args(["d", "--out", "o", "--iac-variant", "lean:levels=0,1,strategy=nsga2"])
    assert lean.iac_variant[0].env == {"nnUNet_IAC_levels": "0,1", "nnUNet_IAC_strategy": "nsga2"}
    assert build_parser().parse_args(["d", "--out", "o"]).strategies == []
    source = _empty_decathlon_task(tmp_path)
    args = build_parser().parse_args([str(source), "--out", str(tmp_path / "out"), "--strategies", "pcdarts,lth",
                                      "--iac-setting", "strategy=shapley"])
    with pytest.raises(DatasetError, match="both choose the search strategy"):
        Benchmark(args).check_inputs()
    args = build_parser().parse_args([str(source), "--out", str(tmp_path / "out"), "--strategies", "pcdarts,lth",
                                      "--iac-variant", "lth:init=gate"])
    with pytest.raises(DatasetError, match="distinct names"):
        Benchmark(args).check_inputs()


def test_control_seeds_limit_the_controls_to_the_first_seeds_and_bad_counts_are_refused(tmp_path):
    """A strategy comparison with 3 seeds trains the controls once: the controls trained and predicted are the
    first seed's (the bare names the main table reads), the IAC arms keep every seed."""
    from nnunet_iac.benchmark.datasets import DatasetError
    from nnunet_iac.benchmark.run_benchmark import Benchmark, build_parser
    source = _empty_decathlon_task(tmp_path)
    common = [str(source), "--out", str(tmp_path / "out"), "--seeds", "3", "--controls", "restart,lowlr",
              "--random-genotypes", "0"]
    one = Benchmark(build_parser().parse_args([*common, "--control-seeds", "1"]))
    one.check_inputs()
    names = [arm.name for arm in one.evaluated_arms()]
    assert one.control_seeds == [12345]
    assert [n for n in names if n.startswith("control")] == ["control", "control_lowlr"]
    assert [n for n in names if n.startswith("iac_seed")] == ["iac_seed12345", "iac_seed12346", "iac_seed12347"]
    every = Benchmark(build_parser().parse_args(common))
    assert every.control_seeds == [12345, 12346, 12347]
    assert len([a for a in every.evaluated_arms() if a.name.startswith("control")]) == 6
    for bad in ("0", "4"):
        with pytest.raises(DatasetError, match="--control-seeds must be between 1 and --seeds"):
            Benchmark(build_parser().parse_args([*common, "--control-seeds", bad])).check_inputs()
