"""The plateau regime's pieces: the criterion on nnU-Net's curve, the longer base on a narrower network, the
base resumable with --c. (Its arms after the base are the short regime's, run end to end by the smoke test.)"""
import json

import pytest

from nnunet_iac.benchmark.budgets import HIPPOCAMPUS
from nnunet_iac.benchmark.plans import write_bench_plans
from nnunet_iac.benchmark.plateau import plateau_check
from nnunet_iac.benchmark.regimes import PLATEAU, SHORT
from nnunet_iac.benchmark.report import base_curve_line
from nnunet_iac.benchmark.run_benchmark import Benchmark, build_parser


def test_a_curve_still_rising_in_its_last_quarter_is_not_a_plateau_and_a_flat_one_is():
    rising = {"ema_fg_dice": [0.5 + 0.01 * i for i in range(20)]}  # +0.05 over the last 5 epochs
    flat = {"ema_fg_dice": [0.5 + 0.01 * i for i in range(15)] + [0.641 + 0.0001 * i for i in range(5)]}
    check = plateau_check(rising)
    assert not check["met"] and check["gain_last_fraction"] == pytest.approx(0.05)
    check = plateau_check(flat)
    assert check["met"] and check["gain_last_fraction"] == pytest.approx(0.0014) and check["epochs"] == 20
    assert "NOT met" in base_curve_line(plateau_check(rising)) and "+5.00 points" in base_curve_line(
        plateau_check(rising))
    assert not plateau_check({"ema_fg_dice": [0.5]})["met"]
    assert "too few epochs" in base_curve_line(plateau_check({}))


def _args(*extra):
    return build_parser().parse_args(["unused", "--out", "unused", *extra])


def test_the_plateau_regime_trains_a_longer_base_on_a_narrower_network_unless_told_otherwise():
    budget = Benchmark._budget(_args(), "Dataset004_Hippocampus", PLATEAU)
    assert budget.base_epochs == 4 * HIPPOCAMPUS.base_epochs and budget.features_divisor == 2
    assert budget.retrain_epochs == HIPPOCAMPUS.retrain_epochs  # the arms after the base keep their budget
    given = Benchmark._budget(_args("--base-epochs", "50", "--features-divisor", "1"), "Dataset004_Hippocampus",
                              PLATEAU)
    assert given.base_epochs == 50 and given.features_divisor == 1
    assert Benchmark._budget(_args(), "Dataset004_Hippocampus", SHORT) == HIPPOCAMPUS
    assert PLATEAU.base_trainer == SHORT.base_trainer and PLATEAU.checkpoint == "checkpoint_final.pth"


def test_the_features_divisor_narrows_every_stage_of_the_copied_plans(tmp_path):
    architecture = {"arch_kwargs": {"features_per_stage": [32, 64, 128, 256], "strides": [[1, 1], [2, 2]]}}
    plans = {"plans_name": "nnUNetPlans", "configurations": {"2d": {"architecture": architecture,
                                                                   "patch_size": [56, 40], "batch_size": 366}}}
    (tmp_path / "nnUNetPlans.json").write_text(json.dumps(plans))
    config = write_bench_plans(tmp_path, 32, None, features_divisor=2)
    assert config["architecture"]["arch_kwargs"]["features_per_stage"] == [16, 32, 64, 128]
    written = json.loads((tmp_path / "nnUNetPlans_bench.json").read_text())
    assert written["configurations"]["2d"]["architecture"]["arch_kwargs"]["features_per_stage"] == [16, 32, 64, 128]
    assert written["configurations"]["2d"]["batch_size"] == 32
    # the original plans stay as nnU-Net wrote them
    assert json.loads((tmp_path / "nnUNetPlans.json").read_text()) == plans


def test_a_zero_features_divisor_is_refused():
    from nnunet_iac.benchmark.budgets import BudgetError
    with pytest.raises(BudgetError, match="--features-divisor"):
        Benchmark._budget(_args("--features-divisor", "0"), "Dataset004_Hippocampus", SHORT)
