"""DARTS-ADP's symptoms per seed (issue 17): alpha's entropy, the parameter-free share and the cells' stable
rank, read from files whose answers are known, and the report table that averages them over seeds."""
import json

import pytest

from nnunet_iac.benchmark.report import dynamics_table
from nnunet_iac.benchmark.search_dynamics import parameter_free_share, probe_course, search_dynamics
from nnunet_iac.cells.genotype import Genotype
from nnunet_iac.search.history import HISTORY_FILE
from nnunet_iac.search.probe_history import PROBE_HISTORY_FILE

GENOTYPE = Genotype(nodes=((("sep_conv_3x3", 0), ("identity", 1)),
                           (("max_pool_3x3", 0), ("dil_conv_3x3", 2))), concat=(2, 3))


def _probe(epoch, sep_rank, pool_rank, noise, rates=None):
    # two operations with 3 and 1 probe rows: the mean must weight them 3:1
    row = {"epoch": epoch, "seconds": 0.1,
           "operations": {"sep_conv_3x3": {"rows": 3, "stable_rank": sep_rank, "all_noise": noise},
                          "dil_conv_3x3": {"rows": 1, "stable_rank": pool_rank, "all_noise": 0.0}}}
    if rates:
        row["learning_rates"] = rates
    return row


def _search_fold(folder, probes):
    folder.mkdir(parents=True)
    rows = [{"epoch": e, "phase": phase, "genotype": GENOTYPE.to_dict(), "alpha_entropy": entropy}
            for e, (phase, entropy) in enumerate([("warmup", 2.0794), ("search", 2.07), ("search", 1.5)])]
    (folder / HISTORY_FILE).write_text(json.dumps(rows))
    GENOTYPE.save(folder / "genotype.json")
    (folder / PROBE_HISTORY_FILE).write_text(json.dumps(probes))
    return folder


def test_parameter_free_share_counts_operations_without_weights():
    assert parameter_free_share(GENOTYPE) == 0.5  # identity and max pool of four


def test_probe_course_weights_operations_by_their_rows_and_reads_adas_rates(tmp_path):
    fold = _search_fold(tmp_path / "search", [_probe(0, 0.0, 0.4, 1.0), _probe(1, 0.2, 0.0, 0.5),
                                               _probe(2, 0.4, 0.8, 0.0, rates={"a": 0.1, "b": 0.3})])
    course = probe_course(fold)
    assert course["epochs"] == [0, 2]
    assert course["stable_rank"] == pytest.approx([0.1, 0.5])  # (3*0 + 0.4)/4, (3*0.4 + 0.8)/4
    assert course["all_noise"] == pytest.approx([0.75, 0.0])
    assert course["last_learning_rate"] == pytest.approx(0.2)
    assert probe_course(tmp_path / "no probes") is None


def test_search_dynamics_reads_entropy_genotype_and_both_runs_probes(tmp_path):
    search = _search_fold(tmp_path / "search", [_probe(0, 0.0, 0.0, 1.0), _probe(2, 0.0, 0.0, 1.0)])
    retrain = tmp_path / "retrain"
    retrain.mkdir()
    dynamics = search_dynamics(search, retrain)
    assert dynamics["alpha_entropy"] == [2.0794, 1.5]
    assert dynamics["parameter_free_share"] == 0.5
    assert dynamics["search_probe"]["last_learning_rate"] is None and dynamics["retrain_probe"] is None


def test_dynamics_table_averages_seeds_and_says_na_where_a_seed_lacks_numbers():
    def seed(entropy_end, rank_end, rate=None, retrain=True):
        probe = {"epochs": [0, 9], "stable_rank": [0.0, rank_end], "all_noise": [1.0, 0.5], "last_learning_rate": rate}
        return {"dynamics": {"alpha_entropy": [2.0794, entropy_end], "parameter_free_share": 0.25,
                             "search_probe": probe, "retrain_probe": probe if retrain else None}}

    table = "\n".join(dynamics_table({
        "iac": {"seeds": {"1": seed(2.0, 0.1), "2": seed(1.0, 0.3)}},
        "iac_adas": {"seeds": {"1": seed(2.0, 0.1, rate=0.01), "2": seed(2.0, 0.1, rate=0.03, retrain=False)}},
        "iac_old": {"seeds": {"1": {}}}}))
    rows = {line.split(" | ")[0].strip("| "): line for line in table.splitlines() if line.startswith("| iac")}
    assert rows["iac"] == "| iac | 2.0794 -> 1.5000 | 25% | 0.000 -> 0.200 | 100 -> 50 % | n/a | 0.000 -> 0.200 | 100 -> 50 % |"
    assert rows["iac_adas"].startswith("| iac_adas | 2.0794 -> 2.0000 | 25% | 0.000 -> 0.100 | 100 -> 50 % | 0.02 | n/a | n/a |")
    assert rows["iac_old"] == "| iac_old | n/a | n/a | n/a | n/a | n/a | n/a | n/a |"
