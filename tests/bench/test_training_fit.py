"""nnunet_iac/benchmark/training_fit.py: the per-epoch losses of an arm read back from nnU-Net's training logs,
resumed trainings included, and the arm of a support set found again from its name."""
from pathlib import Path

from nnunet_iac.benchmark.adaptation_arms import adapted_arm
from nnunet_iac.benchmark.training_fit import training_fit, training_logs


def _log(folder: Path, name: str, epochs: dict[int, tuple[float, float, float]], killed_in: int | None = None):
    lines = ["2026-12-07 07:50:25.000001: Using optimizer SGD ", "2026-12-07 07:50:25.000002:  "]
    for epoch, (lr, train, val) in epochs.items():
        lines += [f"2026-12-07 07:50:26.{epoch:06d}: Epoch {epoch} ",
                  f"2026-12-07 07:50:26.{epoch:06d}: Current learning rate: {lr} "]
        if epoch == killed_in:
            break
        lines += [f"2026-12-07 07:50:49.{epoch:06d}: train_loss {train} ",
                  f"2026-12-07 07:50:49.{epoch:06d}: val_loss {val} ",
                  f"2026-12-07 07:50:49.{epoch:06d}: Pseudo dice [np.float32(0.4151)] "]
    (folder / name).write_text("\n".join(lines) + "\n")


def test_the_losses_of_every_epoch_are_read_and_a_resumed_epoch_takes_its_latest_log(tmp_path):
    # the second log started at 10:05 sorts before 9:59 by name; nnU-Net does not zero-pad its log names
    _log(tmp_path, "training_log_2026_12_7_9_59_0.txt", {0: (0.01, 3.66, -0.2), 1: (0.0069, -0.17, -0.4),
                                                         2: (0.0037, 9.9, 9.9)}, killed_in=2)
    _log(tmp_path, "training_log_2026_12_7_10_5_0.txt", {2: (0.0037, -0.38, -0.59), 3: (1e-05, -0.4, -0.6)})
    (tmp_path / "training_log_notes.txt").write_text("not nnU-Net's\n")
    assert [p.name for p in training_logs(tmp_path)] == ["training_log_2026_12_7_9_59_0.txt",
                                                          "training_log_2026_12_7_10_5_0.txt"]
    fit = training_fit(tmp_path)
    assert fit == {"epoch": [0, 1, 2, 3], "train_loss": [3.66, -0.17, -0.38, -0.4],
                   "val_loss": [-0.2, -0.4, -0.59, -0.6], "learning_rate": [0.01, 0.0069, 0.0037, 1e-05]}


def test_an_epoch_killed_before_its_losses_has_none_and_a_folder_without_logs_has_no_fit(tmp_path):
    _log(tmp_path, "training_log_2026_12_7_9_59_0.txt", {0: (0.01, 1.5, -0.1), 1: (0.005, 0.0, 0.0)}, killed_in=1)
    assert training_fit(tmp_path) == {"epoch": [0, 1], "train_loss": [1.5, None], "val_loss": [-0.1, None],
                                      "learning_rate": [0.01, 0.005]}
    assert training_fit(tmp_path / "missing") is None


def test_every_arm_of_a_support_set_is_found_again_from_its_name():
    found = {name: adapted_arm(name, 4) for name in ("iac", "iac_long_retrain", "target_only", "random_seed12346",
                                                     "control", "control_lowlr", "control_decoder", "control_norm",
                                                     "control_firststage", "base (zero-shot)", "random_mean")}
    assert found["base (zero-shot)"] is None and found["random_mean"] is None
    assert {name: (arm.trainer, arm.plans) for name, arm in found.items() if arm} == {
        "iac": ("nnUNetTrainerIACRetrain", "nnUNetPlans_bench_fold4"),
        "iac_long_retrain": ("nnUNetTrainerIACRetrain", "nnUNetPlans_bench_fold4_longretrain"),
        "target_only": ("nnUNetTrainerBench", "nnUNetPlans_bench_scratch"),
        "random_seed12346": ("nnUNetTrainerIACRetrain", "nnUNetPlans_bench_fold4_random12346"),
        "control": ("nnUNetTrainerBenchControl", "nnUNetPlans_bench"),
        "control_lowlr": ("nnUNetTrainerBenchControlLowLR", "nnUNetPlans_bench"),
        "control_decoder": ("nnUNetTrainerBenchControlDecoder", "nnUNetPlans_bench"),
        "control_norm": ("nnUNetTrainerBenchControlNorm", "nnUNetPlans_bench"),
        "control_firststage": ("nnUNetTrainerBenchControlFirstStage", "nnUNetPlans_bench")}
    assert {arm.fold_index for arm in found.values() if arm} == {4}
