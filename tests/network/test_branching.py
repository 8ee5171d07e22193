"""Branch inputs from neighbouring levels (nnUNet_IAC_branching, issue 18): shapes in 2D and 3D, what each merge
does, the search's choice recorded in the genotype, discrete cells rebuilt from plans, and clear refusals."""
import json
from dataclasses import replace

import pytest
import torch

from nnunet_iac.cells.branching import MERGES, neighbour_channels, neighbour_features, resample
from nnunet_iac.cells.genotype import Genotype, GenotypeError
from nnunet_iac.network.builders import CellOptions, implant_discrete_cells, implant_search_cells
from nnunet_iac.network.implant import ImplantError, freeze_base, implanted_decoder
from nnunet_iac.network.implanted_network import ImplantedUNet, implanted_architecture
from nnunet_iac.network.reference_networks import EXAMPLE_GENOTYPE_DICT, tiny_plain_unet
from nnunet_iac.nnunet.settings import IACSettings, SettingsError
from nnunet_iac.search.pc_darts import PCDartsStrategy
from nnunet_iac.search.random_genotype import random_genotype
from nnunet_iac.selection.candidates import genotype_key

SIZES = {2: (32, 32), 3: (16, 16, 16)}
OPTIONS = {"k": 4, "width_divisor": 4, "mode": "residual", "init": "small", "levels": "all", "branching": "on"}


def _example(**branches) -> Genotype:
    genotype = Genotype.from_dict(EXAMPLE_GENOTYPE_DICT)
    return replace(genotype, branches=tuple(branches.items()))


@pytest.mark.parametrize("dim", [2, 3])
def test_neighbours_are_the_adjacent_encoder_outputs_resampled_to_the_level(dim):
    channels = [4, 8, 16, 32]
    assert neighbour_channels(channels, 0) == {"lower": 32, "higher": 8}  # lowest decoder level: the bottleneck
    assert neighbour_channels(channels, 2) == {"lower": 8}                # highest: nothing above it
    skips = [torch.randn(1, c, *[s // 2 ** i for s in SIZES[dim]]) for i, c in enumerate(channels)]
    found = neighbour_features(skips, 1)
    assert found["lower"] is skips[2] and found["higher"] is skips[0]
    size = skips[1].shape[2:]
    assert resample(found["lower"], size).shape[2:] == size and resample(found["higher"], size).shape[2:] == size
    pooled = resample(torch.arange(16.0).reshape(1, 1, 4, 4), (2, 2))
    assert pooled.flatten().tolist() == [2.5, 4.5, 10.5, 12.5]  # averages of 2x2 blocks
    assert resample(torch.tensor([[[[1.0, 2.0]]]]), (2, 4)).flatten().tolist() == [1, 1, 2, 2, 1, 1, 2, 2]


@pytest.mark.parametrize("dim", [2, 3])
def test_a_branching_supernet_keeps_the_base_shapes_and_learns_its_merges(dim):
    torch.manual_seed(0)
    base = tiny_plain_unet(dim, deep_supervision=False)
    x = torch.randn(2, 1, *SIZES[dim])
    expected = base(x).shape
    network = freeze_base(implant_search_cells(base, CellOptions(init="small", branching="on")))
    decoder = implanted_decoder(network)
    assert [tuple(c.branch_reductions) for c in decoder.iac_cells] == [("lower", "higher"), ("lower", "higher"),
                                                                        ("lower",)]
    out = network(x)
    assert out.shape == expected
    out.square().mean().backward()
    assert decoder.iac_architecture.branch_alpha.grad.abs().sum() > 0
    assert all(p.grad is not None for c in decoder.iac_cells for p in c.branch_reductions.parameters())
    without = implant_search_cells(tiny_plain_unet(dim, deep_supervision=False), CellOptions())
    assert not hasattr(implanted_decoder(without).iac_architecture, "branch_alpha")  # checkpoint keys unchanged
    assert not any("branch" in key for key in without.state_dict())


def test_each_merge_does_what_it_says_in_the_search_cell():
    torch.manual_seed(0)
    network = implant_search_cells(tiny_plain_unet(2, deep_supervision=False), CellOptions(init="small",
                                                                                          branching="on"))
    cell = implanted_decoder(network).iac_cells[0]
    architecture = implanted_decoder(network).iac_architecture()
    skip, up = torch.randn(1, 32, 8, 8), torch.randn(1, 32, 8, 8)  # level 0 of features 8, 16, 32, 64
    neighbours = {"lower": torch.randn(1, 64, 4, 4), "higher": torch.randn(1, 16, 16, 16)}
    moved = {**neighbours, "lower": neighbours["lower"] + 1}

    def output(merge: str, given) -> torch.Tensor:
        weights = torch.zeros(2, len(MERGES))
        weights[:, MERGES.index(merge)] = 1.0
        with torch.no_grad():
            return cell(skip, up, architecture, given, weights)

    assert torch.equal(output("none", neighbours), output("none", moved))  # 'none' ignores the branch
    for merge in ("add", "concat"):
        assert not torch.allclose(output(merge, neighbours), output(merge, moved))
    assert not torch.allclose(output("add", neighbours), output("concat", neighbours))


def test_the_search_records_the_strongest_merge_per_direction_and_none_is_no_branch():
    network = implant_search_cells(tiny_plain_unet(2, deep_supervision=False), CellOptions(branching="on"))
    strategy = PCDartsStrategy()
    strategy.network = network
    assert strategy.current({}, OPTIONS).genotype.branches == ()  # all equal: 'none' first
    with torch.no_grad():
        implanted_decoder(network).iac_architecture.branch_alpha.copy_(torch.tensor([[0, 0, 1.0], [2.0, 1, 0]]))
    genotype = strategy.current({}, OPTIONS).genotype
    assert genotype.branches == (("lower", "concat"),) and genotype.cell_options["branching"] == "on"
    back = Genotype.from_dict(json.loads(json.dumps(genotype.to_dict())))
    assert back == genotype and back.branches == genotype.branches
    assert back != replace(genotype, branches=()) and "branch from the lower level: concat" in genotype.describe()


def test_genotype_files_with_and_without_branches():
    plain = Genotype.from_dict(EXAMPLE_GENOTYPE_DICT)
    assert plain.branches == () and "branches" not in plain.to_dict()
    with_branches = _example(lower="add")
    assert genotype_key(with_branches) != genotype_key(plain)
    assert genotype_key(plain) == genotype_key(Genotype.from_dict({**EXAMPLE_GENOTYPE_DICT, "meta": {"x": 1}}))
    assert Genotype.from_dict({**EXAMPLE_GENOTYPE_DICT, "branches": {"lower": "none", "higher": "none"}}) == plain
    for bad in ({"lower": "multiply", "higher": "none"}, {"lower": "add"}, ["add"]):
        with pytest.raises(GenotypeError, match="branches"):
            Genotype.from_dict({**EXAMPLE_GENOTYPE_DICT, "branches": bad})


@pytest.mark.parametrize("dim", [2, 3])
def test_discrete_cells_take_the_chosen_branches_and_rebuild_from_plans(dim):
    genotype = replace(_example(lower="add", higher="concat"),
                       meta={"spatial_dims": dim, "levels": 3})
    options = CellOptions(branching="on")
    torch.manual_seed(0)
    network = implant_discrete_cells(tiny_plain_unet(dim, deep_supervision=False), genotype, options)
    cells = implanted_decoder(network).iac_cells
    assert [(tuple(c.branch_reductions), c.concat_slots) for c in cells] == [
        (("lower", "higher"), ("higher",)), (("lower", "higher"), ("higher",)), (("lower",), ())]
    x = torch.randn(1, 1, *SIZES[dim])
    assert network(x).shape == tiny_plain_unet(dim, deep_supervision=False)(x).shape
    base = tiny_plain_unet(dim, deep_supervision=False)
    architecture = implanted_architecture({"network_class_name": f"{type(base).__module__}.{type(base).__name__}",
                                           "arch_kwargs": {}}, genotype, options)
    assert architecture["arch_kwargs"]["iac_genotype"]["branches"] == {"lower": "add", "higher": "concat"}
    assert _example(higher="add").to_dict()["branches"] == {"lower": "none", "higher": "add"}
    kwargs = {**_tiny_kwargs(dim), **architecture["arch_kwargs"]}
    rebuilt = ImplantedUNet(input_channels=1, num_classes=3, **kwargs)
    rebuilt.load_state_dict(network.state_dict(), strict=True)
    network.eval(), rebuilt.eval()
    with torch.no_grad():
        assert torch.allclose(rebuilt(x), network(x))
    with pytest.raises(ImplantError, match="branching='off'"):
        implant_discrete_cells(tiny_plain_unet(dim, deep_supervision=False), genotype, CellOptions())


def _tiny_kwargs(dim: int) -> dict:
    """The arch kwargs tiny_plain_unet builds with (as plans.json would give them)."""
    from nnunet_iac.network import reference_networks
    return {**reference_networks._tiny_stages(4), **reference_networks._layers(dim), "n_conv_per_stage": 2,
            "n_conv_per_stage_decoder": 2}


def test_random_genotypes_of_a_branching_search_draw_the_merges_too():
    template = replace(_example(), cell_options=OPTIONS, search_space=tuple(Genotype.from_dict(
        EXAMPLE_GENOTYPE_DICT).operations()) + ("zero",))
    drawn = {random_genotype(template, seed).branches for seed in range(30)}
    assert len(drawn) > 3 and () in drawn
    assert random_genotype(replace(template, cell_options={**OPTIONS, "branching": "off"}), 0).branches == ()


def test_branching_settings_are_checked():
    assert IACSettings.from_env({"nnUNet_IAC_branching": "on"}).cell_options.branching == "on"
    with pytest.raises(SettingsError, match="branching"):
        IACSettings.from_env({"nnUNet_IAC_branching": "yes"})
    with pytest.raises(SettingsError, match="does not evolve the branches"):
        IACSettings.from_env({"nnUNet_IAC_branching": "on", "nnUNet_IAC_strategy": "nsga2"})
