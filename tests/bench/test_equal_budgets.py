"""What keeps the benchmark's arms on equal terms (issue 37), as unit tests instead of the 8-minute smoke run:
the controls' batch budget (a search iteration is two batches), the one best-epoch rule for every arm, and the
budget ``iac_selected`` had on top of IAC's, printed beside its rows."""
import json
import math

import pytest

from nnunet_iac.benchmark import measures
from nnunet_iac.benchmark.arms import ArmRunner, control_arm
from nnunet_iac.benchmark.budgets import HIPPOCAMPUS
from nnunet_iac.benchmark.regimes import PAPER, SHORT
from nnunet_iac.benchmark.report import selected_note, statistics_text
from nnunet_iac.benchmark.paired_statistics import statistics_method
from nnunet_iac.nnunet.best_epoch_window import BestEpochWindowMixin, is_candidate


class _Recorder:
    """Stands in for StageRunner: keeps every command and environment instead of running it."""

    def __init__(self):
        self.calls = []

    def run(self, stage, *command, env=None):
        self.calls.append((stage, command, env or {}))


def _search_fold(tmp_path, warmup: int, search: int):
    fold = tmp_path / "search"
    fold.mkdir()
    rows = [{"epoch": e, "phase": "warmup" if e < warmup else "search"} for e in range(warmup + search)]
    (fold / "search_history.json").write_text(json.dumps(rows))
    return fold


def test_the_control_trains_as_many_batches_as_the_iac_arm_with_a_search_iteration_counted_twice(tmp_path):
    """2 warm-up + 5 search epochs and 4 retrain epochs of 50 iterations: 100 + 2 x 250 + 200 = 800 batches,
    16 control epochs; counting the search's iterations once would give 550 batches and 11 epochs."""
    epochs = measures.search_epochs_run(_search_fold(tmp_path, warmup=2, search=5))
    batches = measures.iac_batches(epochs, retrain_epochs=4, iterations_per_epoch=50)
    assert batches == {"warmup_iterations": 100, "search_iterations": 250, "retrain_iterations": 200,
                       "batches": 800}
    recorder = _Recorder()
    budget = HIPPOCAMPUS.with_overrides(retrain_epochs=4)
    arms = ArmRunner(recorder, dataset_id=4, results=tmp_path, budget=budget, device="cpu", regime=PAPER)
    arms.train_control(control_arm("lowlr", 1, 1, PAPER), seed=1, batches=batches["batches"])
    (_, command, env), = recorder.calls
    assert env["nnUNet_BENCH_epochs"] == "16" and env["nnUNet_BENCH_iterations_per_epoch"] == "50"
    assert arms.control_epochs(801) == 17  # rounded up: never fewer batches than IAC
    # its best epoch among the last retrain-epochs epochs, as many candidates as IAC's retrain has
    assert env["nnUNet_BENCH_best_window"] == "4"
    assert "nnUNetTrainerBenchControlLowLRPaper" in command


class _NnUNetEpochEnd:
    """nnU-Net's rule for checkpoint_best.pth (nnUNetTrainer.on_epoch_end): save when the EMA beats _best_ema."""

    def __init__(self, num_epochs: int, ema: list[float]):
        self.num_epochs, self.ema, self.current_epoch, self._best_ema, self.saved = num_epochs, ema, 0, None, []

    def on_epoch_end(self):
        value = self.ema[self.current_epoch]
        if self._best_ema is None or value > self._best_ema:
            self._best_ema = value
            self.saved.append(self.current_epoch)
        self.current_epoch += 1


class _Windowed(BestEpochWindowMixin, _NnUNetEpochEnd):
    pass


def _best_epoch(trainer) -> int:
    for _ in range(trainer.num_epochs):
        trainer.on_epoch_end()
    return trainer.saved[-1]


def test_the_best_epoch_is_chosen_among_the_last_epochs_only():
    """The EMA peaks early (epoch 2) in a 10-epoch control: nnU-Net's rule picks epoch 2, a window of 3 picks the
    best of epochs 7-9, and a window of 0 is nnU-Net's rule."""
    ema = [0.5, 0.7, 0.9, 0.6, 0.6, 0.6, 0.6, 0.62, 0.65, 0.63]
    assert _best_epoch(_NnUNetEpochEnd(10, ema)) == 2
    windowed = _Windowed(10, ema)
    windowed.best_window = 3
    assert _best_epoch(windowed) == 8 and windowed.saved == [7, 8]
    assert _best_epoch(_Windowed(10, ema)) == 2
    assert [is_candidate(e, 10, 3) for e in (6, 7, 9)] == [False, True, True]


def test_a_run_continued_inside_the_window_still_saves_its_best():
    """nnU-Net's --c restores _best_ema from the latest checkpoint, written during a non-candidate epoch (inf)."""
    ema = [0.9, 0.5, 0.6, 0.55]
    resumed = _Windowed(4, ema)
    resumed.best_window, resumed.current_epoch, resumed._best_ema = 2, 2, math.inf
    assert _best_epoch_from(resumed) == 2


def _best_epoch_from(trainer) -> int:
    while trainer.current_epoch < trainer.num_epochs:
        trainer.on_epoch_end()
    return trainer.saved[-1]


def test_the_benchmark_trainers_apply_the_window():
    from nnunet_iac.trainers.benchmarking import nnUNetTrainerBench as bench
    for name in ("nnUNetTrainerBenchControlPaper", "nnUNetTrainerBenchControlLowLRPaper",
                 "nnUNetTrainerBenchControlDecoderPaper", "nnUNetTrainerBenchControl"):
        order = getattr(bench, name).__mro__
        assert order.index(BestEpochWindowMixin) < order.index(bench.nnUNetTrainer), name


def test_the_report_states_the_epoch_rule_the_level_and_the_selected_budget():
    iac = measures.iac_batches({"warmup": 2, "search": 5}, 4, 50)  # 800 batches, a search 600 of them
    selected = measures.selected_batches(iac, searches=3, trials=4, trial_batches=200)
    assert selected["batches"] == 3 * 600 + 4 * 200 + 200 and selected["times_iac"] == pytest.approx(2800 / 800)
    note = selected_note({"batches": selected})["iac_selected"]
    assert note.startswith("2,800 batches, 3.5x one IAC seed's: 3 searches + 4 trials")
    results = {"benchmark": {"statistics": statistics_method(), "epoch_rule": PAPER.epoch_rule(4)},
               "paired": {"validation": {"a - b": {}, "a - c": {}}, "test": {"a - b": {}}}}
    text = statistics_text(results)[0]
    assert "Intervals at 95%" in text and "resampling the cases (paired) and each side's seeds" in text
    assert "Comparisons in this table: 2 on validation, 1 on test" in text
    assert "best among its last 4 epochs" in text and "Dice 1 where the arm predicts nothing" in text
    assert "last epoch" in SHORT.epoch_rule(4)
