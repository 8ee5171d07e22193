from nnunet_iac.network.builders import CellOptions
from nnunet_iac.cells.genotype import Genotype
from nnunet_iac.network.parameter_report import parameter_report
from nnunet_iac.network.reference_networks import EXAMPLE_GENOTYPE_DICT, hippocampus_2d_unet


def test_hippocampus_2d_cells_stay_small(capsys):
    report = parameter_report(hippocampus_2d_unet(), Genotype.from_dict(EXAMPLE_GENOTYPE_DICT), CellOptions())
    with capsys.disabled():
        print("\nParameters added to the Hippocampus 2d U-Net (example genotype):\n" + report.markdown())
    assert [lv.skip_channels for lv in report.levels] == [128, 64, 32]
    assert [lv.width for lv in report.levels] == [32, 16, 8]
    assert 1_900_000 < report.base < 2_000_000
    assert 0 < report.discrete_total < 0.15 * report.base
    assert report.architecture == 14 * 8 + 14
