"""Probing the cells (nnunet_iac/search/cell_probing.py, probe_history.py; issue 17): every convolution per level,
edge and operation, pruned operations left out, a learned edge stands out, and probing off costs nothing."""
import json

import numpy as np
import pytest
import torch

from nnunet_iac.cells.genotype import Genotype
from nnunet_iac.network.builders import CellOptions
from nnunet_iac.network.implant import implanted_decoder
from nnunet_iac.network.reference_networks import tiny_plain_unet
from nnunet_iac.search import probe_history
from nnunet_iac.search.cell_probing import FRAME, cell_weights, module_gains, operation_summary, probe_cells
from nnunet_iac.search.pc_darts import PCDartsStrategy
from nnunet_iac.search.plots import plot_probe
from nnunet_iac.search.probe_history import PROBE_HISTORY_FILE, ProbeRecorder

CONV_OPERATIONS = {"sep_conv_3x3": 4, "sep_conv_5x5": 4, "dil_conv_3x3": 2, "dil_conv_5x5": 2}  # convs per op


def _supernet(seed=0):
    torch.manual_seed(seed)
    return PCDartsStrategy.build_supernet(tiny_plain_unet(2, deep_supervision=False), CellOptions(init="small"))


def test_a_searchable_cell_is_probed_on_every_edge_of_every_convolution_of_every_operation():
    network = _supernet()
    cells = implanted_decoder(network).iac_cells
    edges = cells[0].topology.num_edges
    rows = probe_cells(network)
    per_level = sum(CONV_OPERATIONS.values()) * edges
    assert len([r for r in rows if r.operation != FRAME]) == len(cells) * per_level
    assert len([r for r in rows if r.operation == FRAME]) == 3 * len(cells)  # two reductions, one projection
    assert {(r.level, r.node, r.source) for r in rows if r.operation == "sep_conv_3x3"} == \
        {(level, node, src) for level in range(len(cells)) for src, node in cells[0].topology.edges()}
    summary = operation_summary(rows)
    assert set(summary) == {FRAME, *CONV_OPERATIONS}
    assert summary["sep_conv_3x3"]["rows"] == len(cells) * 4 * edges


def test_an_edge_whose_weights_carry_structure_stands_out_from_the_noise_of_its_neighbours():
    from nnunet_iac.network.reference_networks import hippocampus_2d_unet

    torch.manual_seed(0)  # Hippocampus' cells: 8 channels per edge at level 0 (the tiny net's 2 are too few)
    network = PCDartsStrategy.build_supernet(hippocampus_2d_unet(deep_supervision=False), CellOptions())
    level, node, source, operation, layer, module, _ = next(
        w for w in cell_weights(network) if w[3] == "sep_conv_3x3" and w[4] == "2")  # a pointwise conv
    conv = dict(network.named_modules())[module]
    blocks = conv.weight.shape[0] // implanted_decoder(network).iac_cells[level].sources[source].num_edges
    rng = np.random.default_rng(0)
    u, v = rng.standard_normal((blocks, 1)), rng.standard_normal((1, conv.weight.shape[1]))
    with torch.no_grad():  # the first edge's block: rank one plus a little noise
        conv.weight[:blocks] = torch.as_tensor(u @ v, dtype=conv.weight.dtype).reshape(conv.weight[:blocks].shape) \
            + 0.01 * torch.randn_like(conv.weight[:blocks])
    rows = [r for r in probe_cells(network) if r.module == module]
    learned = [r for r in rows if r.node == node and r.source == source]
    assert len(learned) == 1 and learned[0].kept >= 1 and learned[0].stable_rank > 0
    assert all(r.stable_rank < learned[0].stable_rank for r in rows if r is not learned[0])
    assert module_gains(rows)[module] == pytest.approx(np.mean([r.stable_rank for r in rows]))


def test_operations_pruned_from_every_edge_of_a_node_are_not_probed():
    network = _supernet()
    cell = implanted_decoder(network).iac_cells[0]
    names = cell.operation_names
    cell.sources[0].set_active([names.index("sep_conv_3x3"), names.index("identity")])
    probed = {r.operation for r in probe_cells(network) if r.level == 0 and r.source == 0}
    assert probed == {"sep_conv_3x3"}


def test_a_discrete_cell_is_probed_per_chosen_operation():
    from nnunet_iac.network.builders import implant_discrete_cells

    genotype = Genotype(nodes=((("sep_conv_3x3", 0), ("identity", 1)), (("dil_conv_5x5", 2), ("sep_conv_5x5", 0)),
                               (("max_pool_3x3", 3), ("dil_conv_3x3", 1)), (("sep_conv_3x3", 4), ("zero", 0))),
                        concat=(2, 3, 4, 5))
    network = implant_discrete_cells(tiny_plain_unet(2, deep_supervision=False), genotype)
    rows = [r for r in probe_cells(network) if r.operation != FRAME]
    expected = sum(CONV_OPERATIONS.get(op, 0) for node in genotype.nodes for op, _ in node)
    assert len(rows) == expected * len(implanted_decoder(network).iac_cells)
    assert {(r.node, r.source, r.operation) for r in rows} == {
        (n, src, op) for n, node in enumerate(genotype.nodes) for op, src in node if op in CONV_OPERATIONS}


def test_probing_off_probes_nothing_and_writes_nothing(tmp_path, monkeypatch):
    monkeypatch.setattr(probe_history, "probe_cells", lambda network: pytest.fail("probed with probe_every=0"))
    recorder = ProbeRecorder(tmp_path, every=0)
    assert all(recorder.record(epoch, network=None) is None for epoch in range(5))
    assert not (tmp_path / PROBE_HISTORY_FILE).exists()


def test_the_history_keeps_due_epochs_and_a_continued_run_rewrites_the_epochs_it_repeats(tmp_path):
    network = _supernet()
    recorder = ProbeRecorder(tmp_path, every=2)
    assert [recorder.record(e, network) is not None for e in range(5)] == [True, False, True, False, True]
    assert [r["epoch"] for r in recorder.rows()] == [0, 2, 4]
    rates = {module: 0.05 for module in module_gains(probe_cells(network))}
    recorder.record(2, network, rates)  # a run continued from epoch 2
    rows = json.loads((tmp_path / PROBE_HISTORY_FILE).read_text())
    assert [r["epoch"] for r in rows] == [0, 2]
    assert rows[-1]["learning_rates"]["sep_conv_3x3"] == pytest.approx(0.05)
    assert {"rows", "operations", "seconds"} <= set(rows[-1])
    assert "rows" not in rows[0] and "operations" in rows[0]  # older epochs keep their summary only
    assert len(recorder.probes) == len(rows[-1]["rows"])
    plot_probe(rows, tmp_path / "probe.png")
    assert (tmp_path / "probe.png").read_bytes()[:4] == b"\x89PNG"
