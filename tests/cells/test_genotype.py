import copy
import json

import pytest
import torch

from nnunet_iac.cells.topology import CellTopology
from nnunet_iac.network.builders import implant_discrete_cells
from nnunet_iac.cells.discrete_cell import DiscreteCell
from nnunet_iac.cells.genotype import Genotype, GenotypeError, derive_genotype
from nnunet_iac.cells.operations import search_space
from nnunet_iac.network.reference_networks import EXAMPLE_GENOTYPE_DICT, tiny_plain_unet
from nnunet_iac.cells.search_cell import PartialChannelEdges
from genotype_files import assert_load_refused

OPS = search_space()


def test_json_round_trip(tmp_path):
    g = Genotype.from_dict(EXAMPLE_GENOTYPE_DICT)
    g.save(tmp_path / "genotype.json")
    loaded = Genotype.load(tmp_path / "genotype.json")
    assert loaded == g
    assert loaded.meta == EXAMPLE_GENOTYPE_DICT["meta"]
    assert json.loads((tmp_path / "genotype.json").read_text())["format"] == "nnunet-iac-genotype"


def test_hand_set_alpha_beta_give_the_expected_genotype():
    t = CellTopology()
    alpha = torch.zeros(t.num_edges, len(OPS))
    beta = torch.zeros(t.num_edges)
    want = {  # node -> {source: op}; the strongest non-zero op of every edge and the 2 strongest edges
        0: {0: "sep_conv_3x3", 1: "dil_conv_5x5"},
        1: {1: "max_pool_3x3", 2: "identity"},
        2: {0: "sep_conv_5x5", 3: "avg_pool_3x3"},
        3: {2: "dil_conv_3x3", 4: "sep_conv_3x3"},
    }
    for e, (src, node) in enumerate(t.edges()):
        alpha[e, OPS.index("zero")] = 5.0  # zero is never chosen, however strong
        if src in want[node]:
            alpha[e, OPS.index(want[node][src])] = 3.0
            beta[e] = 2.0
        else:
            alpha[e, OPS.index("identity")] = 1.0
    op_w = torch.softmax(alpha, -1)
    edge_w = torch.cat([torch.softmax(beta[t.edge_offset(n):t.edge_offset(n) + 2 + n], 0) for n in range(4)])
    g = derive_genotype(op_w, edge_w, t, OPS)
    assert g.nodes == tuple(tuple((op, src) for src, op in sorted(want[n].items())) for n in range(4))
    assert g.concat == (2, 3, 4, 5)


def test_beta_decides_between_edges_with_equal_alpha():
    t = CellTopology(num_nodes=1, concat_last=1)
    alpha = torch.zeros(2, len(OPS))
    alpha[:, OPS.index("sep_conv_3x3")] = 1.0
    g = derive_genotype(torch.softmax(alpha, -1), torch.softmax(torch.tensor([0.0, 1.0]), 0), t, OPS,
                        inputs_per_node=1)
    assert g.nodes == ((("sep_conv_3x3", 1),),)


@pytest.mark.parametrize("mutate,message", [
    (lambda d: d.update(format="darts"), "not an nnunet-iac genotype"),
    (lambda d: d.update(version=99), "unsupported version 99"),
    (lambda d: d["nodes"][1][0].update(op="conv_9x9"), "unknown operation 'conv_9x9'"),
    (lambda d: d["nodes"][1][0].update(op="zero"), "unknown operation 'zero'"),
    (lambda d: d["nodes"][0][0].update(input=2), "node 0 reads input 2"),
    (lambda d: d["nodes"][0][0].pop("input"), "exactly 'op' and 'input'"),
    (lambda d: d.update(nodes=[]), "non-empty list"),
    (lambda d: d.update(concat=[2, 3]), "'concat'"),
])
def test_broken_genotype_gives_a_clear_error(tmp_path, mutate, message):
    data = copy.deepcopy(EXAMPLE_GENOTYPE_DICT)
    mutate(data)
    assert_load_refused(tmp_path, data, message)


def test_not_json_and_missing_file_are_clear_errors(tmp_path):
    path = tmp_path / "genotype.json"
    path.write_text("{ this is not json")
    with pytest.raises(GenotypeError, match="not valid JSON"):
        Genotype.load(path)
    with pytest.raises(GenotypeError, match="does not exist.*nnUNet_IAC_genotype"):
        Genotype.load(tmp_path / "missing.json")


def test_discrete_cell_has_only_the_chosen_ops_on_all_channels():
    g = Genotype.from_dict(EXAMPLE_GENOTYPE_DICT)
    net = implant_discrete_cells(tiny_plain_unet(), g)
    for cell in net.decoder.iac_cells:
        assert isinstance(cell, DiscreteCell)
        assert not any(isinstance(m, PartialChannelEdges) for m in cell.modules())
        assert [len(ops) for ops in cell.node_ops] == [2, 2, 2, 2]
        first_sep_conv = cell.node_ops[0][0]
        assert first_sep_conv[1].in_channels == cell.width and first_sep_conv[1].groups == cell.width
