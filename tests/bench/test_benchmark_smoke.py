"""The benchmark entry point (``nnunet-iac benchmark``, nnunet_iac/benchmark/run_benchmark.py): --smoke end to end on the synthetic dataset,
input errors, and the numbers it derives. The full benchmark is not part of the test suite."""
import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from nnunet_iac.benchmark import measures
from nnunet_iac.benchmark.arms import BASE, CONTROL, control_arm, iac_arm, random_arm, search_arm, selected_arm
from nnunet_iac.benchmark.budgets import HIPPOCAMPUS, profile_for
from nnunet_iac.benchmark.datasets import identify
from nnunet_iac.benchmark.run_benchmark import main as benchmark_main
from nnunet_iac.nnunet.checkpointing import safe_load
from nnunet_iac.cells.genotype import Genotype
from nnunet_iac.tools.synthetic_dataset import make_synthetic_dataset

REPO = Path(__file__).resolve().parents[2]

SHARED_HIPPOCAMPUS = REPO.parent / "shared" / "data" / "Task04_Hippocampus"


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    root = tmp_path_factory.mktemp("benchmark")
    raw = make_synthetic_dataset(root / "source", 990, num_cases=10, num_test_cases=2)
    out = root / "out"
    result = subprocess.run([sys.executable, "-m", "nnunet_iac.tools.cli", "benchmark", str(raw), "--out", str(out),
                             "--test-images", str(raw / "imagesTs"), "--test-labels", str(raw / "labelsTs"),
                             "--smoke", "--iac-setting", "init=gate", "--random-genotypes", "2",
                             "--select", "2", "--strategies", "pcdarts,lth"],
                            cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 0, f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return out, json.loads((out / "results.json").read_text())


@pytest.mark.integration
def test_smoke_results_have_every_arm_set_ratio_and_the_genotype(smoke):
    out, results = smoke
    for arm in ("base", "control", "iac"):
        for case_set in ("validation", "test"):
            dice = results["dice"][arm][case_set]
            assert 0.0 <= dice["mean"] <= 1.0 and {"class 1 (dim)", "class 2 (bright)"} <= set(dice)
    assert results["sets"]["test"]["cases"] == 2 and results["sets"]["validation"]["cases"] == 2
    for name in ("search_iteration", "search_iteration_mean", "search_memory", "predict_time"):
        assert results["ratios"][name]["value"] > 0 and "target" in results["ratios"][name]
    Genotype.from_dict(results["genotype"])
    params = results["parameters"]
    assert params["base"] > 0 and 0 < params["added_by_cells"] and 0 < params["added_fraction"] < 1
    assert {"base training", "search (seed 12345)", "retrain (seed 12345)", "control training",
            "predict (base)"} <= set(results["stages"])
    # the base continues with --c after an interrupted sitting; its curve is judged against the plateau criterion
    assert "--c" in results["stages"]["base training"]["command"].split()
    assert results["base_curve"]["epochs"] == results["budget"]["base_epochs"]
    assert (out / "base_progress.png").is_file() and "Base curve:" in (out / "results.md").read_text()


@pytest.mark.integration
def test_smoke_iac_arm_ran_with_the_given_setting_and_reports_its_gradient_signal(smoke):
    out, results = smoke
    assert results["benchmark"]["iac_settings"] == {"nnUNet_IAC_init": "gate"}
    _, _, retrained = _trained(out, iac_arm(12345))
    assert retrained["iac"]["settings"]["init"] == "gate"
    assert any(k.endswith("output_gate") for k in retrained["network_weights"])
    signal = results["iac_seeds"]["12345"]["signal"]
    assert signal["search"]["alpha"]["epochs"] >= 1 and signal["retrain"]["projection"][0]["epochs"] >= 1
    assert "## Gradient signal" in (out / "results.md").read_text()
    # paired per-case differences of this run's arms, from nnU-Net's own per-case evaluation
    paired = results["paired"]["test"]
    assert {"iac_seed12345 - base", "iac_seed12345 - control", "control - base"} <= set(paired)
    assert paired["control - base"]["n"] == results["sets"]["test"]["cases"]
    assert "## Paired differences per case" in (out / "results.md").read_text()


def _trained(out, arm):
    """Epochs an arm's training ran and the batch size it ran with, read from its final checkpoint."""
    checkpoint = safe_load(arm.fold(out / "nnUNet_results" / "Dataset990_IACSynthetic") / "checkpoint_final.pth")
    plans = checkpoint["init_args"]["plans"]["configurations"][checkpoint["init_args"]["configuration"]]
    return checkpoint["current_epoch"], plans["batch_size"], checkpoint


@pytest.mark.integration
def test_smoke_control_got_at_least_the_batches_the_iac_arm_consumed(smoke):
    """From the checkpoints the runs left, not from results.json: the control trained at least as many batches of
    the same size as the IAC arm (a warm-up or retrain iteration one batch, a search iteration two), less than
    one epoch more."""
    out, results = smoke
    iterations = results["budget"]["iterations_per_epoch"]
    control_epochs, control_batch, _ = _trained(out, CONTROL)
    search_epochs, search_batch, search = _trained(out, search_arm(12345))
    retrain_epochs, retrain_batch, _ = _trained(out, iac_arm(12345))
    warmup_epochs = sum(row["phase"] == "warmup" for row in search["iac"]["history"])
    assert len(search["iac"]["history"]) == search_epochs
    iac_batches = iterations * (warmup_epochs + 2 * (search_epochs - warmup_epochs) + retrain_epochs)
    assert control_batch == search_batch == retrain_batch
    assert iac_batches <= control_epochs * iterations < iac_batches + iterations
    assert results["budget"]["iac_batches"]["batches"] == iac_batches
    # one seed here (time); --seeds N runs the same per-seed path N times, agreement is tested below
    assert set(results["iac_seeds"]) == {"12345"} and results["genotype_agreement"] is None
    assert results["iac_dice_spread"]["test"]["n"] == 1


@pytest.mark.integration
def test_smoke_runs_every_control_and_random_genotype_and_compares_iac_with_them(smoke):
    out, results = smoke
    arms = {"base", "control", "control_lowlr", "control_decoder", "iac_seed12345", "iac_lth_seed12345",
            "iac_selected", "random_seed12345", "random_seed12346"}
    assert set(results["arms"]) == arms
    assert all(0.0 <= results["arms"][a][s]["mean"] <= 1.0 for a in arms for s in ("validation", "test"))
    rows = results["paired"]["test"]
    for reference in ("base", "control", "control_lowlr", "control_decoder", "random_mean_of_seeds",
                      "random_seed12345", "random_seed12346"):
        assert f"iac_seed12345 - {reference}" in rows
    assert any(name.startswith("iac_seed12345 - best control (") for name in rows)
    assert (out / "dice.png").read_bytes()[:4] == b"\x89PNG"
    assert (out / "forest.png").read_bytes()[:4] == b"\x89PNG"
    # iac_selected's rows say the budget it had on top of one IAC seed's (issue 37)
    selected = results["selection"]["batches"]
    assert selected["trials"] == len(results["selection"]["candidates"]) and selected["times_iac"] > 1
    assert f"| iac_selected - base ({selected['batches']:,} batches" in (out / "results.md").read_text()
    assert "## Every arm" in (out / "results.md").read_text()
    assert "`control` restarts nnU-Net's schedule" in (out / "results.md").read_text()


@pytest.mark.integration
def test_smoke_other_strategy_searches_and_retrains_beside_pcdarts_from_the_same_base(smoke):
    out, results = smoke
    search_epochs, _, search = _trained(out, search_arm(12345, variant="lth"))
    assert search["iac"]["strategy"]["name"] == "lth"
    _, _, pcdarts_search = _trained(out, search_arm(12345))
    assert pcdarts_search["iac"]["strategy"]["name"] == "pc_darts"  # the strategy's own name
    _, _, retrained = _trained(out, iac_arm(12345, variant="lth"))
    assert Genotype.from_dict(retrained["iac"]["genotype"]) == Genotype.load(
        search_arm(12345, variant="lth").fold(out / "nnUNet_results" / "Dataset990_IACSynthetic") / "genotype.json")
    variants = results["variants"]
    assert list(variants) == ["iac", "iac_lth"] and variants["iac"]["search_speedup"] == pytest.approx(1.0)
    assert variants["iac_lth"]["settings"] == {"nnUNet_IAC_init": "gate", "nnUNet_IAC_strategy": "lth"}
    lth = variants["iac_lth"]["seeds"]["12345"]
    assert lth["search_seconds"] == results["stages"]["search lth (seed 12345)"]["seconds"] > 0
    assert lth["search_epochs"]["search"] + lth["search_epochs"]["warmup"] == search_epochs
    assert lth["mean_iteration_ratio"] > 0
    assert lth["predict_ratio"] == pytest.approx(results["stages"]["predict (iac_lth_seed12345)"]["seconds"]
                                                 / results["stages"]["predict (base)"]["seconds"])
    assert variants["iac_lth"]["predict_ratio"]["mean"] == pytest.approx(lth["predict_ratio"])
    assert lth["settling"]["search_epochs"] == lth["search_epochs"]["search"]
    assert lth["settling"]["share_of_final"][-1] == 1.0
    dynamics = lth["dynamics"]  # issue 17's symptoms, from the search's and the retrain's own files
    assert dynamics["alpha_entropy"][0] == pytest.approx(math.log(8), abs=1e-4)
    assert 0.0 <= dynamics["parameter_free_share"] <= 1.0
    assert dynamics["search_probe"]["epochs"][-1] == search_epochs - 1 and dynamics["retrain_probe"] is not None
    assert "### What the search did to alpha and to the cells" in (out / "results.md").read_text()
    assert variants["iac"]["agreement_with_reference"] is None
    assert variants["iac_lth"]["agreement_with_reference"]["pairs"] == 1
    assert "iac_lth_seed12345 - iac_seed12345" in results["paired"]["validation"]
    assert "## IAC variants" in (out / "results.md").read_text()


@pytest.mark.integration
def test_smoke_random_genotype_arms_retrain_their_own_draw_with_the_iac_budget(smoke):
    out, results = smoke
    retrain_epochs, _, _ = _trained(out, iac_arm(12345))
    for seed in (12345, 12346):
        drawn = Genotype.load(out / "random_genotypes" / f"random_seed{seed}.json")
        assert drawn.meta["random_draw"]["seed"] == seed
        assert Genotype.from_dict(results["random_genotypes"][f"random_seed{seed}"]) == drawn
        epochs, _, checkpoint = _trained(out, random_arm(seed))
        assert epochs == retrain_epochs
        assert Genotype.from_dict(checkpoint["iac"]["genotype"]) == drawn


@pytest.mark.integration
def test_smoke_selected_arm_retrains_what_nnunet_iac_select_chose_on_val_search(smoke):
    out, results = smoke
    selection = results["selection"]
    assert 1 <= len(selection["candidates"]) <= 2
    assert selection["selected"] in {c["name"] for c in selection["candidates"]}
    assert selection["budget"]["epochs"] == results["budget"]["retrain_epochs"]
    search_fold = search_arm(12345).fold(out / "nnUNet_results" / "Dataset990_IACSynthetic")
    chosen = Genotype.load(search_fold / "genotype_selected.json")
    epochs, _, checkpoint = _trained(out, selected_arm())
    assert Genotype.from_dict(checkpoint["iac"]["genotype"]) == chosen
    assert epochs == results["budget"]["retrain_epochs"]
    assert "iac_selected - iac_seed12345" in results["paired"]["validation"]
    assert "## Genotype selection" in (out / "results.md").read_text()


@pytest.mark.integration
def test_smoke_controls_train_what_their_names_say(smoke):
    """decoder: the encoder's weights are the base's, the decoder's moved; lowlr: a constant rate of 1e-3;
    restart: nnU-Net's schedule from 1e-2 (its rate decays)."""
    out, _ = smoke
    base = _trained(out, BASE)[2]["network_weights"]
    decoder = _trained(out, control_arm("decoder", 12345, 12345))[2]["network_weights"]
    encoder_keys = [k for k in base if k.startswith("encoder.")]
    decoder_keys = [k for k in base if k.startswith("decoder.") and not k.startswith("decoder.encoder.")]
    assert encoder_keys and decoder_keys
    assert all(torch.equal(base[k], decoder[k]) for k in encoder_keys)
    assert any(not torch.equal(base[k], decoder[k]) for k in decoder_keys)
    lowlr = _trained(out, control_arm("lowlr", 12345, 12345))[2]["optimizer_state"]["param_groups"][0]["lr"]
    restart = _trained(out, CONTROL)[2]["optimizer_state"]["param_groups"][0]["lr"]
    assert lowlr == pytest.approx(1e-3) and 0 < restart < 1e-2


@pytest.mark.integration
def test_smoke_writes_results_md_and_a_log_of_every_command(smoke):
    out, _ = smoke
    text = (out / "results.md").read_text()
    for heading in ("## Dice", "## Ratios", "## Parameters", "## Genotype", "## IAC per search seed", "## Budgets",
                    "## Stages"):
        assert heading in text
    log = (out / "benchmark_log.txt").read_text()
    assert "nnUNetv2_train" in log and "nnUNetv2_predict" in log and "nnUNetv2_evaluate_folder" in log


def _run(argv, capsys):
    code = benchmark_main(argv)
    return code, capsys.readouterr().err


def test_missing_dataset_folder_is_named(tmp_path, capsys):
    code, err = _run([str(tmp_path / "nope"), "--out", str(tmp_path / "out")], capsys)
    assert code == 2 and "does not exist" in err and "Decathlon" in err


def test_folder_of_neither_layout_is_refused(tmp_path, capsys):
    folder = tmp_path / "Something"
    for sub in ("imagesTr", "labelsTr"):
        (folder / sub).mkdir(parents=True)
    (folder / "dataset.json").write_text(json.dumps({"labels": {}}))
    code, err = _run([str(folder), "--out", str(tmp_path / "out")], capsys)
    assert code == 2 and "neither a Decathlon task" in err


def test_test_images_without_labels_are_refused(tmp_path, capsys):
    raw = make_synthetic_dataset(tmp_path / "raw", 990, num_cases=2, num_test_cases=1, shape=(4, 4, 4))
    code, err = _run([str(raw), "--out", str(tmp_path / "out"), "--test-images", str(raw / "imagesTs")], capsys)
    assert code == 2 and "--test-labels" in err and "labelled" in err


def test_test_labels_without_their_images_are_refused(tmp_path, capsys):
    raw = make_synthetic_dataset(tmp_path / "raw", 990, num_cases=2, num_test_cases=1, shape=(4, 4, 4))
    empty = tmp_path / "empty"
    empty.mkdir()
    code, err = _run([str(raw), "--out", str(tmp_path / "out"), "--test-images", str(empty), "--test-labels",
                      str(raw / "labelsTs")], capsys)
    assert code == 2 and "lacks 1 image file" in err


def test_genotype_agreement_counts_shared_edges_and_operations():
    def genotype(nodes):
        return Genotype(nodes=tuple(tuple(n) for n in nodes), concat=(2, 3))

    a = genotype([[("sep_conv_3x3", 0), ("identity", 1)], [("max_pool_3x3", 0), ("dil_conv_3x3", 2)]])
    b = genotype([[("sep_conv_3x3", 0), ("sep_conv_5x5", 1)], [("max_pool_3x3", 1), ("dil_conv_3x3", 2)]])
    agreement = measures.genotype_agreement([a, b])
    assert agreement["edges"] == 3 / 4 and agreement["edges_and_ops"] == 2 / 4
    assert agreement["identical_genotypes"] == 0
    assert measures.genotype_agreement([a, a])["edges_and_ops"] == 1.0
    assert measures.genotype_agreement([a]) is None


def test_chance_agreement_is_the_mean_overlap_of_all_random_genotypes():
    import itertools
    from nnunet_iac.cells.operations import OPERATIONS

    a = Genotype(nodes=((("sep_conv_3x3", 0), ("identity", 1)), (("max_pool_3x3", 0), ("dil_conv_3x3", 2))),
                 concat=(2, 3))
    pairs = [(x, y) for x in itertools.combinations(range(3), 2) for y in itertools.combinations(range(3), 2)]
    node_3 = sum(len(set(x) & set(y)) for x, y in pairs) / len(pairs)
    chance = measures.chance_agreement(a)
    assert chance["chance_edges"] == pytest.approx((2 + node_3) / 4) and node_3 == pytest.approx(4 / 3)
    assert chance["chance_edges_and_ops"] == pytest.approx(chance["chance_edges"] / (len(OPERATIONS) - 1))
    assert measures.genotype_agreement([a, a])["chance_edges"] == chance["chance_edges"]


def test_random_genotype_arms_agree_with_each_other_at_the_chance_level_the_report_names():
    """The random-genotype arm draws what chance_agreement assumes: pairs of draws share edges and
    operations as often as the formula says (so IAC's agreement and the random arm measure the same thing)."""
    from nnunet_iac.search.random_genotype import random_genotype

    template = Genotype(nodes=tuple(((("sep_conv_3x3", 0), ("identity", 1)),) + tuple(
        (("sep_conv_5x5", 0), ("max_pool_3x3", j + 1)) for j in range(1, 4))), concat=(2, 3, 4, 5))
    measured = measures.genotype_agreement([random_genotype(template, seed) for seed in range(200)])  # all pairs
    chance = measures.chance_agreement(template)
    assert measured["edges"] == pytest.approx(chance["chance_edges"], abs=0.01)
    assert measured["edges_and_ops"] == pytest.approx(chance["chance_edges_and_ops"], abs=0.01)


def test_seconds_per_iteration_leaves_out_the_first_epoch_and_the_warmup():
    # epochs of 100, 10, 12, 30 and 40 s
    log = {"epoch_start_timestamps": [0, 100, 110, 122, 152], "epoch_end_timestamps": [100, 110, 122, 152, 192]}
    checkpoint = {"logging": log}
    assert measures.seconds_per_iteration(checkpoint, 10) == pytest.approx(2.1)  # median of 10, 12, 30, 40 s
    assert measures.mean_seconds_per_iteration(checkpoint, 10, 2) == pytest.approx(82 / 3 / 10)  # 12, 30, 40 s
    assert measures.seconds_per_iteration(checkpoint, 10, first_epoch=2) == pytest.approx(3.0)


@pytest.mark.skipif(not SHARED_HIPPOCAMPUS.is_dir(), reason="../shared/data/Task04_Hippocampus is absent")
def test_shared_hippocampus_is_a_decathlon_task_with_its_own_budget():
    source = identify(SHARED_HIPPOCAMPUS)
    assert (source.layout, source.name) == ("decathlon", "Dataset004_Hippocampus")
    assert profile_for(source.name, smoke=False) == HIPPOCAMPUS
