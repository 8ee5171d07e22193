"""Gradient SNR, projection norms and their history / plot (issue 13, item 2)."""
import json
import math

import pytest
import torch
from torch import nn

from nnunet_iac.network.builders import implant_discrete_cells, implant_search_cells
from nnunet_iac.cells.genotype import Genotype
from nnunet_iac.network.implant import architecture_parameters, cell_parameters, freeze_base, implanted_decoder
from nnunet_iac.search.optimizers import architecture_optimizer, cell_optimizer
from nnunet_iac.search.plots import plot_signal
from nnunet_iac.network.reference_networks import EXAMPLE_GENOTYPE_DICT, tiny_plain_unet
from nnunet_iac.search.history import SearchHistory
from nnunet_iac.search.architecture_step import architecture_step, gradients_only_for
from nnunet_iac.search.signal_history import load_signal_rows, record_signal_epoch
from nnunet_iac.search.signal_monitor import CellSignalMonitor, GradientSignal, describe_signal, projection_norms
from nnunet_workspace import DATASET_ID


def snr_of(gradients: list[list[torch.Tensor]]) -> float:
    """GradientSignal's SNR of one group over ``gradients`` (batches x tensors), fed through ``.grad``."""
    params = [nn.Parameter(torch.zeros_like(g)) for g in gradients[0]]
    signal = GradientSignal({"group": params})
    for batch in gradients:
        for p, g in zip(params, batch):
            p.grad = g.clone()
        signal.observe()
    return signal.snr()["group"]


def reference_snr(gradients: list[list[torch.Tensor]]) -> float:
    """The documented definition computed directly from all batches at once (float64)."""
    stacked = torch.stack([torch.cat([g.double().flatten() for g in batch]) for batch in gradients])
    n = stacked.shape[0]
    return float(stacked.mean(0).norm() / (stacked.var(0, unbiased=True).sum() / n).sqrt())


def test_snr_follows_its_definition_and_has_a_noise_floor_of_one():
    torch.manual_seed(1)
    n, shapes = 40, [(20, 8), (30,)]
    noise = [[torch.randn(s) for s in shapes] for _ in range(n)]
    assert snr_of(noise) == pytest.approx(reference_snr(noise), rel=1e-9)
    assert 0.8 < snr_of(noise) < 1.25, "zero-mean gradients must sit at the noise floor"

    mean = [torch.full(s, 0.2) for s in shapes]
    drifting = [[m + g for m, g in zip(mean, batch)] for batch in noise]
    noise_sq = 190 / n  # sigma = 1 on 190 elements: sum of the squared standard errors
    signal_sq = sum(float((m ** 2).sum()) for m in mean)
    expected = math.sqrt((signal_sq + noise_sq) / noise_sq)  # E ||m||^2 = ||mu||^2 + noise_sq
    assert snr_of(drifting) == pytest.approx(reference_snr(drifting), rel=1e-9)
    assert snr_of(drifting) == pytest.approx(expected, rel=0.15)

    tiny = [[g * 1e-9 for g in batch] for batch in drifting]  # alpha's gradient scale; float32 gradients
    assert snr_of(tiny) == pytest.approx(snr_of(drifting), rel=1e-5)


def test_non_finite_batches_are_not_counted_and_few_batches_give_nan():
    torch.manual_seed(2)
    batches = [[torch.randn(5)] for _ in range(6)]
    with_inf = batches[:3] + [[torch.tensor([1.0, math.inf, 0.0, 0.0, 0.0])]] + batches[3:]
    assert snr_of(with_inf) == pytest.approx(snr_of(batches), rel=1e-12)
    assert math.isnan(snr_of(batches[:1]))
    assert math.isnan(snr_of([[torch.ones(5)]] * 4)), "no variation: SNR undefined"

    param = nn.Parameter(torch.zeros(3))
    signal = GradientSignal({"p": [param]})
    signal.observe()  # no gradient yet: nothing counted
    param.grad = torch.ones(3)
    signal.observe()
    assert signal.batches() == {"p": 1}
    signal.reset()
    assert signal.batches() == {"p": 0}
    with pytest.raises(ValueError, match="hold no tensors"):
        GradientSignal({"empty": []})


@pytest.fixture
def supernet_and_batch():
    torch.manual_seed(0)
    network = freeze_base(implant_search_cells(tiny_plain_unet(2, deep_supervision=False))).train()
    return network, {"data": torch.randn(2, 1, 16, 16), "target": torch.randint(0, 3, (2, 16, 16))}


def cell_step(network, batch, optimizer):
    """A cell-weight step like nnU-Net's (its gradients stay in .grad afterwards)."""
    optimizer.zero_grad(set_to_none=True)
    nn.functional.cross_entropy(network(batch["data"]), batch["target"]).backward()
    optimizer.step()


def test_monitor_of_a_supernet_records_every_signal_per_level(supernet_and_batch):
    network, batch = supernet_and_batch
    monitor = CellSignalMonitor(network)
    arch, cells = architecture_parameters(network), cell_parameters(network)
    arch_opt, cell_opt = architecture_optimizer(arch), cell_optimizer(cells)
    assert projection_norms(network) == [0.0, 0.0, 0.0], "residual cells start with zero projections"
    for _ in range(3):
        with gradients_only_for(arch, cells):
            architecture_step(network, nn.functional.cross_entropy, batch, arch_opt, torch.device("cpu"),
                              on_gradients=monitor.observe_architecture)
        with gradients_only_for(cells, arch):
            cell_step(network, batch, cell_opt)
        monitor.observe_cells()
    assert monitor.architecture.batches() == {"alpha": 3, "beta": 3}
    summary = monitor.epoch_summary()
    assert set(summary) == {"snr_alpha", "snr_beta", "snr_projection", "projection_norm"}
    assert len(summary["snr_projection"]) == len(summary["projection_norm"]) == 3
    assert all(v > 0 for v in summary["projection_norm"])
    # The first step of zero projections gives alpha no gradient at all; later ones do.
    assert all(math.isfinite(summary[k]) and summary[k] > 0 for k in ("snr_alpha", "snr_beta"))
    assert "alpha" in describe_signal(summary) and "projections per level" in describe_signal(summary)
    monitor.reset()
    assert all(math.isnan(v) for v in monitor.epoch_summary()["snr_projection"])


def test_gated_cells_count_the_gate_as_part_of_the_projection(supernet_and_batch):
    network, _ = supernet_and_batch
    cell = implanted_decoder(network).iac_cells[0]
    nn.init.constant_(cell.output_projection.weight, 0.5)
    plain = projection_norms(network)[0]
    cell.output_gate = nn.Parameter(torch.full((1,), -0.25))
    assert projection_norms(network)[0] == pytest.approx(plain * 0.25)
    assert any(p is cell.output_gate for p in CellSignalMonitor(network).cells.groups["projection_0"])


def test_retrain_rows_are_written_resumed_and_plotted(tmp_path):
    """The retrain's use: discrete cells, observe_cells after each step, one row per epoch."""
    torch.manual_seed(0)
    network = implant_discrete_cells(tiny_plain_unet(2, deep_supervision=False),
                                     Genotype.from_dict(EXAMPLE_GENOTYPE_DICT))
    network = freeze_base(network).train()
    batch = {"data": torch.randn(2, 1, 16, 16), "target": torch.randint(0, 3, (2, 16, 16))}
    monitor = CellSignalMonitor(network)
    with pytest.raises(ValueError, match="no alpha/beta"):
        monitor.observe_architecture()
    optimizer = cell_optimizer(cell_parameters(network))
    path = tmp_path / "signal_history.json"
    for epoch in range(3):
        monitor.reset()
        for _ in range(3):
            cell_step(network, batch, optimizer)
            monitor.observe_cells()
        summary = monitor.epoch_summary()
        assert "snr_alpha" not in summary
        record_signal_epoch(path, epoch, {**summary, "train_loss": 1.0 / (epoch + 1), "val_loss": math.nan})
    rows = load_signal_rows(path)
    assert [r["epoch"] for r in rows] == [0, 1, 2]
    assert rows[2]["val_loss"] is None and len(rows[2]["snr_projection"]) == 3
    assert all(a < b for a, b in zip(rows[0]["projection_norm"], rows[2]["projection_norm"]))
    record_signal_epoch(path, 1, {**summary, "train_loss": 9.0})  # a --c from the epoch-1 checkpoint
    assert [(r["epoch"], r["train_loss"]) for r in load_signal_rows(path)] == [(0, 1.0), (1, 9.0)]
    plot_signal(load_signal_rows(path), tmp_path / "signal.png", {"train_loss": "train", "val_loss": "validation"})
    assert (tmp_path / "signal.png").stat().st_size > 0
    (tmp_path / "broken.json").write_text("{")
    with pytest.raises(ValueError, match="not valid JSON.*delete it"):
        load_signal_rows(tmp_path / "broken.json")


OLD_ROW = {"epoch": 0, "phase": "warmup", "genotype": {}, "op_weights": [[0.125] * 8], "edge_weights": [1.0],
           "train_loss": 0.5, "arch_loss": None, "val_loss": 0.4, "seconds": 2.0, "parameter_free_ops": 0,
           "alpha_entropy": 2.0794}


def test_histories_without_the_diagnostics_still_load_and_new_ones_round_trip():
    old = SearchHistory.from_list([OLD_ROW]).records[0]
    assert math.isnan(old.arch_loss) and old.snr_alpha is None and old.projection_norm is None
    new_row = {**OLD_ROW, "snr_alpha": math.nan, "snr_beta": 3.0, "snr_projection": [1.5, math.inf],
               "projection_norm": [0.1, 0.2]}
    rows = SearchHistory.from_list([new_row]).to_list()
    assert json.loads(json.dumps(rows, allow_nan=False)) == rows, "the file must be strict JSON"
    assert (rows[0]["snr_alpha"], rows[0]["snr_beta"], rows[0]["snr_projection"]) == (None, 3.0, [1.5, None])
    assert SearchHistory.from_list(rows).to_list() == rows


@pytest.mark.integration
def test_search_writes_the_diagnostics_for_every_epoch(workspace):
    """A 3-epoch search (1 warm-up) through nnUNetv2_train, fold 4 with the fold-0 base (no other test's folder)."""
    base = workspace.train_base("2d") / "fold_0" / "checkpoint_final.pth"
    env = {"nnUNet_IAC_epochs": "3", "nnUNet_IAC_warmup_epochs": "1", "nnUNet_IAC_iterations_per_epoch": "3",
           "nnUNet_IAC_val_iterations_per_epoch": "1", "nnUNet_IAC_stable_epochs": "0",
           "nnUNet_IAC_search_validation": "0", "nnUNet_IAC_base": str(base)}
    workspace.run("nnUNetv2_train", str(DATASET_ID), "2d", "4", "-tr", "nnUNetTrainerIACSearch", "-device", "cpu",
                  env=env)
    folder = workspace.results / "nnUNetTrainerIACSearch__nnUNetPlans__2d" / "fold_4"
    history = json.loads((folder / "search_history.json").read_text())
    levels = len(history[0]["snr_projection"])
    assert levels >= 2 and [r["phase"] for r in history] == ["warmup", "search", "search"]
    assert history[0]["snr_alpha"] is None and history[0]["snr_beta"] is None, "no alpha/beta steps in warm-up"
    for row in history[1:]:
        assert row["snr_alpha"] > 0 and row["snr_beta"] > 0
    for row in history:
        assert len(row["snr_projection"]) == len(row["projection_norm"]) == levels
        assert all(v is not None and v > 0 for v in row["snr_projection"] + row["projection_norm"])
    assert all(a < b for a, b in zip(history[0]["projection_norm"], history[2]["projection_norm"]))
    assert (folder / "signal.png").stat().st_size > 0
    log = "".join(p.read_text() for p in folder.glob("training_log_*.txt"))
    assert log.count("gradient SNR (~1 = noise only)") == 3
