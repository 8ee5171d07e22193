"""Cells at a subset of decoder levels (nnUNet_IAC_levels, issue 18): parsing, the implant, the genotype record,
and the network nnUNetv2_predict rebuilds from plans."""
import copy

import pytest
import torch

from nnunet_iac.cells.genotype import Genotype, GenotypeError
from nnunet_iac.cells.operations import OPERATIONS
from nnunet_iac.cells.levels import LevelsError, parse_levels, resolve_levels
from nnunet_iac.network.builders import CellOptions, implant_discrete_cells, implant_search_cells
from nnunet_iac.network.implant import ImplantError, implanted_decoder
from nnunet_iac.network.implanted_network import ImplantedUNet, implanted_architecture
from nnunet_iac.network.reference_networks import EXAMPLE_GENOTYPE_DICT, tiny_plain_unet
from nnunet_iac.nnunet.settings import IACSettings, SettingsError

GENOTYPE = Genotype.from_dict(EXAMPLE_GENOTYPE_DICT)


def test_levels_are_all_or_a_list_counted_like_python_indexes():
    assert parse_levels("all") is None and parse_levels("ALL") is None
    assert resolve_levels("all", 3) == (0, 1, 2)
    assert resolve_levels("0,1", 3) == (0, 1) and resolve_levels("-1", 3) == (2,) and resolve_levels("2,-3", 3) == (0, 2)
    for text, message in (("top", "neither 'all' nor"), ("0,,1", "neither 'all' nor")):
        with pytest.raises(LevelsError, match=message):
            parse_levels(text)
    with pytest.raises(LevelsError, match="names 3, but this decoder has 3 levels"):
        resolve_levels("0,3", 3)
    with pytest.raises(LevelsError, match="names a level twice"):
        resolve_levels("2,-1", 3)


@pytest.mark.parametrize("dim", [2, 3])
@pytest.mark.parametrize("kind", ["search", "discrete"])
def test_cells_only_where_asked_and_the_other_levels_concatenate_as_the_base(dim, kind):
    base = tiny_plain_unet(dim=dim, deep_supervision=False).eval()
    options = CellOptions(mode="replace", levels="-1")
    net = implant_search_cells(copy.deepcopy(base), options) if kind == "search" else \
        implant_discrete_cells(copy.deepcopy(base), GENOTYPE, options)
    decoder = implanted_decoder(net)
    last = len(base.decoder.stages) - 1
    assert decoder.iac_cell_levels == (last,) and len(decoder.iac_cells) == 1
    seen = []
    decoder.iac_cells[0].register_forward_hook(lambda m, args, out: seen.append(args[0].shape))
    x = torch.randn(2, 1, *([16 if dim == 3 else 32] * dim))
    with torch.no_grad():
        net.eval()(x)
    assert len(seen) == 1 and seen[0][2:] == x.shape[2:]  # the full-resolution skip
    # residual cells at some levels start as the base; a replace cell at the last level changes only that level
    residual = implant_discrete_cells(copy.deepcopy(base), GENOTYPE, CellOptions(levels="0")).eval()
    with torch.no_grad():
        assert torch.allclose(residual(x), base(x), atol=1e-5)
    assert net.decoder.compute_conv_feature_map_size(list(x.shape[2:])) < \
        implant_discrete_cells(copy.deepcopy(base), GENOTYPE, CellOptions(mode="replace")).decoder \
        .compute_conv_feature_map_size(list(x.shape[2:])) or kind == "search"


def test_levels_the_network_lacks_are_refused_with_the_setting_named():
    with pytest.raises(ImplantError, match="nnUNet_IAC_levels"):
        implant_discrete_cells(tiny_plain_unet(2), GENOTYPE, CellOptions(levels="0,7"))
    with pytest.raises(SettingsError, match="nnUNet_IAC_levels: levels 'finest'"):
        IACSettings.from_env({"nnUNet_IAC_levels": "finest"})
    assert IACSettings.from_env({"nnUNet_IAC_levels": "0,1"}).cell_options.levels == "0,1"


def test_the_genotype_records_the_levels_and_older_genotypes_mean_all():
    data = GENOTYPE.to_dict() | {"version": 2, "search_space": list(OPERATIONS),
                                 "cell_options": {"k": 4, "width_divisor": 4, "mode": "residual", "init": "zero"}}
    assert Genotype.from_dict(data).cell_options["levels"] == "all"  # written before levels existed
    data["cell_options"]["levels"] = "-1"
    recorded = Genotype.from_dict(data)
    assert Genotype.from_dict(recorded.to_dict()).cell_options["levels"] == "-1"
    data["cell_options"]["levels"] = "0,x"
    with pytest.raises(GenotypeError, match="cell option levels '0,x'"):
        Genotype.from_dict(data)


def test_the_network_rebuilt_from_plans_has_cells_at_the_recorded_levels_only():
    kwargs = {"n_stages": 4, "features_per_stage": [4, 8, 16, 32], "conv_op": "torch.nn.modules.conv.Conv2d",
              "kernel_sizes": [[3, 3]] * 4, "strides": [[1, 1], [2, 2], [2, 2], [2, 2]],
              "n_conv_per_stage": [1] * 4, "n_conv_per_stage_decoder": [1] * 3, "conv_bias": True,
              "norm_op": "torch.nn.modules.instancenorm.InstanceNorm2d", "norm_op_kwargs": {"eps": 1e-5, "affine": True},
              "dropout_op": None, "dropout_op_kwargs": None, "nonlin": "torch.nn.LeakyReLU",
              "nonlin_kwargs": {"inplace": True}}
    architecture = implanted_architecture(
        {"network_class_name": "dynamic_network_architectures.architectures.unet.PlainConvUNet",
         "arch_kwargs": kwargs, "_kw_requires_import": ["conv_op", "norm_op", "nonlin"]},
        GENOTYPE, CellOptions(levels="1,2"))
    assert architecture["arch_kwargs"]["iac_cell_options"]["levels"] == "1,2"
    from nnunetv2.utilities.get_network_from_plans import get_network_from_plans
    network = get_network_from_plans(architecture["network_class_name"], architecture["arch_kwargs"],
                                     architecture["_kw_requires_import"], 1, 3, allow_init=True,
                                     deep_supervision=False)
    assert isinstance(network, ImplantedUNet) and network.decoder.iac_cell_levels == (1, 2)
    assert network(torch.randn(1, 1, 32, 32)).shape == (1, 3, 32, 32)
