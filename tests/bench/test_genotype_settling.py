"""When a search's genotype settled, and what two strategies' genotypes of one seed share (issue 16): the
measures behind the benchmark's variants table, on histories whose answers are known."""
import json

import pytest

from nnunet_iac.benchmark import measures
from nnunet_iac.benchmark.report import variants_table
from nnunet_iac.cells.genotype import Genotype
from nnunet_iac.search.history import HISTORY_FILE


def _genotype(first_op: str) -> Genotype:
    return Genotype(nodes=((("sep_conv_3x3", 0), ("identity", 1)),
                           ((first_op, 0), ("dil_conv_3x3", 2))), concat=(2, 3))


FINAL = _genotype("max_pool_3x3")


def _history(folder, phases_and_genotypes):
    rows = [{"epoch": i, "phase": phase, "genotype": g.to_dict()} for i, (phase, g) in enumerate(phases_and_genotypes)]
    (folder / HISTORY_FILE).write_text(json.dumps(rows))
    return folder


def test_shared_choices_counts_edges_and_operations_of_the_first_genotype():
    other = Genotype(nodes=FINAL.nodes[:1] + ((("sep_conv_5x5", 0), ("dil_conv_3x3", 1)),), concat=(2, 3))
    # node 2 identical; node 3 shares source 0 but with another operation, and takes 1 instead of 2
    assert measures.shared_choices(FINAL, other) == (3 / 4, 2 / 4)
    assert measures.shared_choices(FINAL, FINAL) == (1.0, 1.0)


def test_settling_finds_the_first_search_epoch_from_which_the_final_genotype_holds(tmp_path):
    early, late = _genotype("sep_conv_5x5"), _genotype("avg_pool_3x3")
    # the warm-up's genotype does not count; the final one appears at search epoch 2, leaves, comes back at 4
    folder = _history(tmp_path, [("warmup", FINAL), ("search", early), ("search", FINAL), ("search", late),
                                 ("search", FINAL), ("search", FINAL)])
    settling = measures.genotype_settling(folder)
    assert settling["search_epochs"] == 5 and settling["settled_at"] == 4
    assert settling["share_of_final"] == [0.75, 1.0, 0.75, 1.0, 1.0]


def test_settling_of_a_search_whose_first_epoch_already_held_the_final_genotype(tmp_path):
    folder = _history(tmp_path, [("search", FINAL), ("search", FINAL)])
    assert measures.genotype_settling(folder)["settled_at"] == 1
    assert measures.genotype_settling(_history(tmp_path, [("warmup", FINAL)])) is None


def test_pairwise_agreement_pairs_genotypes_of_the_same_seed_only():
    other, late = _genotype("sep_conv_5x5"), _genotype("avg_pool_3x3")
    # paired by position: (FINAL, FINAL) identical, (other, late) 3 of 4; crossed pairs would share 3 of 4 each
    agreement = measures.pairwise_agreement([FINAL, other], [FINAL, late])
    assert agreement["pairs"] == 2 and agreement["identical_genotypes"] == 1
    assert agreement["edges_and_ops"] == pytest.approx((1.0 + 0.75) / 2) and agreement["edges"] == 1.0
    assert measures.pairwise_agreement([FINAL], [FINAL, other]) is None


def test_variants_table_shows_settling_and_the_same_seed_agreement():
    def record(settling, **extra):
        seed = {"search_epochs": {"search": 5}, "settling": settling}
        spread = {"mean": 0.5, "std": 0.0}
        return {"seeds": {"12345": seed}, "settings": {}, "search_seconds": {"mean": 60.0, "std": 0.0},
                "search_speedup": 1.0, "mean_iteration_ratio": spread, "dice": {"validation": spread, "test": spread},
                "genotype_agreement": None, **extra}

    settled = {"search_epochs": 5, "settled_at": 4, "share_of_final": [0.75, 1.0, 0.75, 1.0, 1.0]}
    table = "\n".join(variants_table({
        "iac": record(settled, agreement_with_reference=None),
        "iac_lth": record(None, agreement_with_reference={"edges_and_ops": 0.625, "identical_genotypes": 1}),
        "iac_old": record(None)}))
    rows = {line.split(" | ")[0].strip("| "): line for line in table.splitlines() if line.startswith("| iac")}
    assert rows["iac"].endswith("| 4/5 (75%) | reference |")
    assert rows["iac_lth"].endswith("| n/a | 62.5% (1 identical) |")
    assert rows["iac_old"].endswith("| n/a | n/a |")
