"""The genotype carries its cell options and search space (issue 15, item 4): the search records them, Stage III
builds its cells from them, a contradicting nnUNet_IAC_* variable is refused, version-1 genotypes still load."""
import copy
import json
from types import SimpleNamespace

import pytest
import torch

from nnunet_iac.cells.genotype import Genotype, GenotypeError, derive_genotype
from nnunet_iac.cells.operations import search_space
from nnunet_iac.cells.topology import CellTopology
from nnunet_iac.network.builders import CellOptions, implant_search_cells
from nnunet_iac.network.reference_networks import EXAMPLE_GENOTYPE_DICT, tiny_plain_unet
from nnunet_iac.nnunet.search_trainer import IACSearchTrainer
from nnunet_iac.nnunet.settings import (GenotypeOptionsConflict, IACSettings, adopt_genotype_options,
                                        explicit_for_genotype, settings_for_genotype)
from nnunet_iac.search.genotype_choice import genotype_of_epoch
from nnunet_iac.selection.candidates import CandidateError, rank_candidates
from nnunet_iac.search.pc_darts import PCDartsStrategy
from nnunet_iac.search.strategy import StrategyContext
from genotype_files import assert_load_refused

SEARCHED = {"k": 2, "width_divisor": 1, "mode": "replace", "init": "zero", "levels": "all", "branching": "off"}


def version_2(**options) -> dict:
    """EXAMPLE_GENOTYPE_DICT as the search now writes it: with its cell options and search space."""
    data = copy.deepcopy(EXAMPLE_GENOTYPE_DICT)
    data.update(version=2, cell_options={**SEARCHED, **options}, search_space=list(search_space()))
    return data


def stage_three(env: dict, genotype: Genotype) -> IACSettings:
    """What the retrain trainer does before it builds anything: settings from env, options from the genotype."""
    return adopt_genotype_options(IACSettings.from_env(env), IACSettings.explicit(env), genotype.cell_options,
                                  "search/genotype.json")


# ---- the JSON form ----------------------------------------------------------------------------------------

def test_version_1_file_loads_without_options_and_is_written_back_unchanged(tmp_path):
    path = tmp_path / "genotype.json"
    path.write_text(json.dumps(EXAMPLE_GENOTYPE_DICT))
    genotype = Genotype.load(path)
    assert genotype.cell_options is None and genotype.search_space is None
    assert genotype.to_dict() == EXAMPLE_GENOTYPE_DICT


def test_options_and_search_space_round_trip_through_the_file(tmp_path):
    genotype = Genotype.from_dict(version_2())
    genotype.save(tmp_path / "genotype.json")
    loaded = Genotype.load(tmp_path / "genotype.json")
    assert json.loads((tmp_path / "genotype.json").read_text())["version"] == 2
    assert loaded.cell_options == SEARCHED and loaded.search_space == search_space()
    assert loaded.to_dict() == version_2()


def test_derived_genotype_records_the_options_it_is_given_and_the_operation_columns():
    topology = CellTopology()
    weights = torch.softmax(torch.randn(topology.num_edges, len(search_space())), -1)
    genotype = derive_genotype(weights, torch.ones(topology.num_edges), topology, search_space(),
                               cell_options={**SEARCHED, "unrelated": 1})
    assert genotype.cell_options == SEARCHED and genotype.search_space == search_space()
    assert derive_genotype(weights, torch.ones(topology.num_edges), topology, search_space()).version == 1


@pytest.mark.parametrize("mutate,message", [
    (lambda d: d["nodes"][1][0].update(op="conv_9x9"), r"unknown operation 'conv_9x9'"),
    (lambda d: (d["nodes"][0][0].update(op="conv_9x9"), d["search_space"].append("warp_7x7")),
     r"unknown operations 'conv_9x9', 'warp_7x7'"),
    (lambda d: d["search_space"].remove("identity"), r"'identity' is not in the genotype's own search_space"),
    (lambda d: d["cell_options"].pop("mode"), r"'cell_options' must be an object with exactly k, width_divisor"),
    (lambda d: d["cell_options"].update(k=0), r"cell option 'k' is 0"),
    (lambda d: d["cell_options"].update(init="warm"), r"cell option 'init' is 'warm'"),
    (lambda d: d.pop("search_space"), r"'search_space' must be a non-empty list"),
])
def test_genotype_with_unknown_operations_or_broken_options_is_refused(tmp_path, mutate, message):
    data = version_2()
    mutate(data)
    assert_load_refused(tmp_path, data, message)


# ---- what the search writes --------------------------------------------------------------------------------

def fake_search_trainer(settings: IACSettings) -> SimpleNamespace:
    """The attributes IACSearchTrainer.current_view reads, around a real supernet."""
    network = implant_search_cells(tiny_plain_unet(), settings.cell_options)
    strategy = PCDartsStrategy()
    strategy.setup(network, StrategyContext(torch.device("cpu")))
    return SimpleNamespace(network=network, configuration_manager=SimpleNamespace(patch_size=(32, 32)),
                           current_epoch=3, plans_manager=SimpleNamespace(dataset_name="D", plans_name="P"),
                           configuration_name="2d", fold=0, iac_settings=settings, strategy=strategy)


def test_search_records_its_cell_options_and_search_space_in_every_genotype():
    settings = IACSettings.from_env({"nnUNet_IAC_k": "2", "nnUNet_IAC_width_divisor": "1",
                                     "nnUNet_IAC_init": "small"})
    with torch.no_grad():
        genotype = IACSearchTrainer.current_view(fake_search_trainer(settings)).genotype
    assert genotype.cell_options == {"k": 2, "width_divisor": 1, "mode": "residual", "init": "small", "levels": "all", "branching": "off"}
    assert genotype.search_space == search_space()
    assert Genotype.from_dict(genotype.to_dict()).cell_options == genotype.cell_options


def test_genotype_of_a_search_epoch_keeps_that_rows_options(tmp_path):
    rows = [{"epoch": e, "phase": "search", "genotype": version_2(k=e + 1)} for e in range(3)]
    (tmp_path / "search_history.json").write_text(json.dumps(rows))
    genotype = genotype_of_epoch(tmp_path / "search_history.json", 1)
    assert genotype.cell_options["k"] == 2 and genotype.search_space == search_space()
    assert genotype.meta["genotype_epoch"] == 1


def test_select_refuses_histories_of_searches_with_other_cell_options(tmp_path):
    paths = []
    for name, options in (("a", {}), ("b", {"width_divisor": 4})):
        rows = [{"epoch": e, "phase": "search", "genotype": version_2(**options)} for e in range(2)]
        paths.append(tmp_path / name / "search_history.json")
        paths[-1].parent.mkdir()
        paths[-1].write_text(json.dumps(rows))
    assert rank_candidates(paths[:1])[0].genotype.cell_options == SEARCHED
    with pytest.raises(CandidateError, match=r"a/search_history.json \(epoch 0\) and .*b/search_history.json "
                                             r"\(epoch 0\) differ in width_divisor 1 vs 4\. "):
        rank_candidates(paths)


# ---- Stage III ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("variable,value,searched", [
    ("nnUNet_IAC_k", "4", "k=2"),
    ("nnUNet_IAC_width_divisor", "4", "width_divisor=1"),
    ("nnUNet_IAC_mode", "residual", "mode=replace"),
])
def test_an_explicit_setting_that_contradicts_the_genotype_is_refused_naming_both(variable, value, searched):
    with pytest.raises(GenotypeOptionsConflict) as info:
        stage_three({variable: value}, Genotype.from_dict(version_2()))
    message = str(info.value)
    assert f"{variable}={value} contradicts" in message and f"searched with {searched}" in message
    assert f"Unset {variable}" in message and f"search again with {variable}={value}" in message
    assert "search/genotype.json" in message


def test_unset_variables_take_the_genotypes_options_and_agreeing_ones_pass():
    unset = stage_three({"nnUNet_IAC_k": ""}, Genotype.from_dict(version_2()))
    assert unset.cell_options == CellOptions(k=2, width_divisor=1, mode="replace", init="zero")
    agreeing = stage_three({"nnUNet_IAC_k": "2", "nnUNet_IAC_mode": "replace", "nnUNet_IAC_epochs": "3"},
                           Genotype.from_dict(version_2()))
    assert agreeing.cell_options == unset.cell_options and agreeing.epochs == 3


def test_levels_an_evolution_chose_among_are_not_a_contradiction_of_its_choice():
    """nnUNet_IAC_levels=0,1 left set from the search names the candidates the evolution chose level 0 from."""
    evolved = Genotype.from_dict({**version_2(levels="0"), "meta": {"evolution": {"levels_searched": "0,1"}}})
    env = {"nnUNet_IAC_levels": "0,1"}
    settings = IACSettings.from_env(env)
    explicit = explicit_for_genotype(evolved.meta, settings, env)
    assert "levels" not in explicit
    assert settings_for_genotype(settings, evolved, "g", env).levels == "0"
    fixed = Genotype.from_dict(version_2(levels="0"))  # no evolution: 0,1 contradicts the genotype's 0
    with pytest.raises(GenotypeOptionsConflict, match="levels"):
        settings_for_genotype(settings, fixed, "g", env)
    other = IACSettings.from_env({"nnUNet_IAC_levels": "1,2"})  # not what the evolution searched
    with pytest.raises(GenotypeOptionsConflict, match="levels"):
        settings_for_genotype(other, evolved, "g", {"nnUNet_IAC_levels": "1,2"})


def test_init_may_be_chosen_for_stage_three_and_defaults_to_the_searched_one():
    genotype = Genotype.from_dict(version_2(mode="residual", init="small"))
    assert stage_three({}, genotype).init == "small"
    assert stage_three({"nnUNet_IAC_init": "gate"}, genotype).init == "gate"


def test_version_1_genotype_takes_the_options_from_the_settings_as_before():
    env = {"nnUNet_IAC_k": "8", "nnUNet_IAC_mode": "replace"}
    assert stage_three(env, Genotype.from_dict(EXAMPLE_GENOTYPE_DICT)) == IACSettings.from_env(env)


def test_a_genotype_mode_this_version_cannot_build_is_refused():
    with pytest.raises(GenotypeError, match="records mode 'additive'"):
        stage_three({}, Genotype.from_dict(version_2(mode="additive")))
