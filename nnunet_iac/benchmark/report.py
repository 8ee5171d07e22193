"""results.json (every number, machine-readable) and results.md (the same as tables) of one benchmark run."""
from __future__ import annotations

import json
import statistics
from pathlib import Path

from nnunet_iac.cells.genotype import Genotype

from nnunet_iac.benchmark.paired_statistics import paired_table
from nnunet_iac.benchmark.regimes import REGIMES

ARMS = ("base", "control", "iac")
SETS = ("validation", "test")


def _num(x, digits: int = 4) -> str:
    return "n/a" if x is None else f"{x:.{digits}f}"


def _delta(a, b) -> str:
    return "n/a" if a is None or b is None else f"{a - b:+.4f}"


def _mib(x) -> str:
    return "n/a" if x is None else f"{x / 2 ** 20:,.0f} MiB"


def _labels(dice: dict) -> list[str]:
    labels = {label for arm in dice.values() for case_set in arm.values() for label in case_set}
    return sorted(labels, key=lambda k: (k == "mean", k))


def dice_table(dice: dict) -> list[str]:
    lines = ["| set | class | base | control | IAC | IAC - base | IAC - control |", "|---|---|---|---|---|---|---|"]
    for case_set in SETS:
        for label in _labels(dice):
            b, c, i = (dice.get(arm, {}).get(case_set, {}).get(label) for arm in ARMS)
            name = f"**{label}**" if label == "mean" else label
            lines.append(f"| {case_set} | {name} | {_num(b)} | {_num(c)} | {_num(i)} | {_delta(i, b)} | {_delta(i, c)} |")
    return lines


def arms_table(arms: dict) -> list[str]:
    """Mean Dice of every arm (seeds and draws one row each) on both sets, and its distance to the base."""
    lines = ["| arm | validation | test | - base, validation | - base, test |", "|---|---|---|---|---|"]
    base = arms.get("base", {})
    for name, dice in arms.items():
        v, t = (dice.get(s, {}).get("mean") for s in SETS)
        bv, bt = (base.get(s, {}).get("mean") for s in SETS)
        lines.append(f"| {name} | {_num(v)} | {_num(t)} | {_delta(v, bv)} | {_delta(t, bt)} |")
    return lines


def random_genotypes_table(genotypes: dict) -> list[str]:
    lines = ["| arm | genotype (op(source) per node) |", "|---|---|"]
    for name, data in genotypes.items():
        lines.append(f"| {name} | {_compact(Genotype.from_dict(data))} |")
    return lines


def _compact(genotype: Genotype) -> str:
    return "; ".join(" + ".join(f"{op}({src})" for op, src in node) for node in genotype.nodes)


def selection_table(selection: dict) -> list[str]:
    lines = ["| rank | candidate | chosen in search epochs | val_search Dice | trial time | genotype |",
             "|---|---|---|---|---|---|"]
    for c in selection["candidates"]:
        mark = " (selected)" if c["name"] == selection["selected"] else ""
        lines.append(f"| {c['rank']} | {c['name']}{mark} | {c['frequency']} | {_num(c['val_search_dice'])} | "
                     f"{_num(c['seconds'], 0)} s | {_compact(Genotype.from_dict(c['genotype']))} |")
    budget = selection["budget"]
    lines += ["", f"{selection['distinct_genotypes']} distinct genotypes in {len(selection['histories'])} search "
                  f"histories; each candidate trained {budget['epochs']} x {budget['iterations_per_epoch']} "
                  f"iterations (IAC's Stage-III budget) and scored on val_search only; the arm `iac_selected` "
                  f"retrains the selected one."]
    return lines


def evolution_trials_table(trials: dict) -> list[str]:
    """Per --select-evolution arm and seed: each trial (levels, supernet Dice, cost, trial Dice), the choice, and
    the retrained choice against the evolution's own choice."""
    lines = []
    for group, record in trials.items():
        for seed, r in record["seeds"].items():
            lines += [f"`{group}`, seed {seed} (the evolution of `iac_{record['variant']}`; chosen: {r['rule']}):", "",
                      "| levels | supernet Dice | cost | trial val_search Dice | trial time | |",
                      "|---|---|---|---|---|---|"]
            for c in r["candidates"]:
                mark = "selected" if c["name"] == r["selected"] else ""
                lines.append(f"| {','.join(map(str, c['levels']))} | {_num(c['supernet_dice'])} | "
                             f"{c['cost']:g} {c['cost_measure']} | {_num(c['val_search_dice'])} | "
                             f"{_num(c['seconds'], 0)} s | {mark} |")
            lines += ["", "| arm | validation Dice | test Dice | predict time / base |", "|---|---|---|---|"]
            for name, dice, predict in ((f"{group} (trials' choice)", r["dice"], r["predict"]),
                                        (f"iac_{record['variant']} (evolution's choice)", r["evolution_dice"],
                                         r["evolution_predict"])):
                lines.append(f"| {name} | {_num(dice['validation']['mean'])} | {_num(dice['test']['mean'])} | "
                             f"{_num(predict['value'], 2)} |")
            budget = r["budget"]
            lines += ["", f"Each trial: Stage III of the point on train_search for {budget['epochs']} x "
                          f"{budget['iterations_per_epoch']} iterations (IAC's Stage-III budget), scored on "
                          f"val_search; the point is the one the supernet scored best among those with as many cell "
                          f"levels (nnunet_iac/selection/evolution_candidates.py).", ""]
    return lines


def ratio_table(ratios: dict) -> list[str]:
    lines = ["| ratio | measured | target | met | from |", "|---|---|---|---|---|"]
    for name, r in ratios.items():
        met = "n/a" if r["value"] is None else ("yes" if r["met"] else "**no**")
        lines.append(f"| {r['label']} | {_num(r['value'], 2)} | <= {r['target']} | {met} | {r['from']} |")
    return lines


def seeds_table(results: dict) -> list[str]:
    seeds = results["iac_seeds"]
    lines = ["| seed | validation mean Dice | test mean Dice | retrain's own validation | genotype (op(source) per node) |",
             "|---|---|---|---|---|"]
    for seed, r in seeds.items():
        compact = _compact(Genotype.from_dict(r["genotype"]))
        own = (r["retrain_own_validation"] or {}).get("mean")
        lines.append(f"| {seed} | {_num(r['dice']['validation'].get('mean'))} | {_num(r['dice']['test'].get('mean'))} "
                     f"| {_num(own)} | {compact} |")
    agreement, spread = results["genotype_agreement"], results["iac_dice_spread"]
    lines.append("")
    if agreement:
        lines.append(f"- Genotype agreement over {agreement['pairs']} seed pair(s): same edges (node, source) "
                     f"{agreement['edges']:.1%}, same edges and operations {agreement['edges_and_ops']:.1%}; "
                     f"{agreement['identical_genotypes']} pair(s) identical (genotypes drawn at random would "
                     f"share {agreement['chance_edges']:.1%} and {agreement['chance_edges_and_ops']:.1%}).")
    for case_set in SETS:
        s = spread.get(case_set)
        if s:
            lines.append(f"- IAC mean Dice on {case_set} over {s['n']} seed(s): mean {s['mean']:.4f}, "
                         f"std {s['std']:.4f}, min {s['min']:.4f}, max {s['max']:.4f}.")
    return lines


def variants_table(variants: dict) -> list[str]:
    """IAC variants beside the run's own IAC arm (issues 16, 17): time, iteration ratio, Dice and agreement over
    seeds."""
    lines = ["| arm | settings | seeds | search wall time | faster than iac | search epochs run | mean iteration ratio "
             "| validation Dice | test Dice | predict time / base | seeds' agreement (edges+ops) "
             "| genotype final from search epoch (first epoch's share of it) | same choices as iac, same seed |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]

    def mean_std(s, scale=1.0, digits=4):
        return "n/a" if not s else f"{scale * s['mean']:.{digits}f} +- {scale * s['std']:.{digits}f}"

    for name, r in variants.items():
        epochs = ", ".join(str(seed["search_epochs"]["search"]) for seed in r["seeds"].values())
        agreement = r["genotype_agreement"]
        shared = "n/a" if not agreement else (f"{agreement['edges_and_ops']:.1%} (chance "
                                              f"{agreement['chance_edges_and_ops']:.1%})")
        settings = ", ".join(f"{k.removeprefix('nnUNet_IAC_')}={v}" for k, v in r["settings"].items()) or "defaults"
        lines.append(f"| {name} | {settings} | {len(r['seeds'])} | {mean_std(r['search_seconds'], 1 / 60, 1)} min | "
                     f"{r['search_speedup']:.2f}x | {epochs} | {mean_std(r['mean_iteration_ratio'], digits=2)} | "
                     f"{mean_std(r['dice']['validation'])} | {mean_std(r['dice']['test'])} | "
                     f"{mean_std(r.get('predict_ratio'), digits=2)}"
                     f"{' (base timed in another sitting)' if r.get('predict_same_sitting') is False else ''} | "
                     f"{shared} | {_settling(r['seeds'])} | {_with_reference(r)} |")
    lines += ["", "Mean +- std over seeds. Wall time of the search stage (nnUNetv2_train, start to end); the mean "
                  "iteration ratio is the mean search epoch after warm-up over the base's median training epoch "
                  "(equal batch); a pruning search may stop before its budget once every edge has one operation; "
                  "predict time: the arm's nnUNetv2_predict wall time over the base's, same cases, the base timed "
                  "again in the arm's sitting when it was predicted in another one. Genotype final from search "
                  "epoch k: from k on every search epoch's genotype made all the final genotype's choices (per "
                  "seed, k / search epochs run), in brackets the share of them the first search epoch's genotype "
                  "made. Same choices as iac: the share of the variant's (node, source, op) choices that the "
                  "reference arm's genotype of the same seed makes too, mean over seeds. "
                  "Genotypes per seed: results.json, `variants`."]
    return lines


def _pair(values: list, digits: int, scale: float = 1.0, unit: str = "") -> str:
    """'first -> last' of the seeds' means, or n/a where a seed lacks the numbers."""
    if not values or any(v is None or None in v for v in values):
        return "n/a"
    return " -> ".join(f"{scale * statistics.mean(v[i] for v in values):.{digits}f}" for i in (0, 1)) + unit


def dynamics_table(variants: dict) -> list[str]:
    """DARTS-ADP's symptoms per IAC arm (issue 17; nnunet_iac/benchmark/search_dynamics.py), mean over seeds."""
    lines = ["| arm | alpha entropy (start -> end of search) | parameter-free ops chosen | cells' stable rank, search "
             "(first -> last probe) | all-noise share, search | Adas mean rate at search end | cells' stable rank, "
             "retrain | all-noise share, retrain |", "|---|---|---|---|---|---|---|---|"]
    for name, r in variants.items():
        dynamics = [seed.get("dynamics") for seed in r["seeds"].values()]
        if not all(dynamics):
            lines.append(f"| {name} | n/a | n/a | n/a | n/a | n/a | n/a | n/a |")
            continue
        search = [d["search_probe"] for d in dynamics]
        retrain = [d["retrain_probe"] for d in dynamics]
        probes = {"search": search if all(search) else [], "retrain": retrain if all(retrain) else []}
        rates = [p["last_learning_rate"] for p in probes["search"]]
        lines.append(
            f"| {name} | {_pair([d['alpha_entropy'] for d in dynamics], 4)} | "
            f"{statistics.mean(d['parameter_free_share'] for d in dynamics):.0%} | "
            f"{_pair([p['stable_rank'] for p in probes['search']], 3)} | "
            f"{_pair([p['all_noise'] for p in probes['search']], 0, 100, ' %')} | "
            f"{f'{statistics.mean(rates):.2g}' if rates and None not in rates else 'n/a'} | "
            f"{_pair([p['stable_rank'] for p in probes['retrain']], 3)} | "
            f"{_pair([p['all_noise'] for p in probes['retrain']], 0, 100, ' %')} |")
    lines += ["", "Mean over seeds. Alpha entropy: mean over edges of softmax(alpha)'s entropy in nats (log 8 = 2.0794 "
                  "undecided) at the first and the last epoch of the search (a pruning strategy's pruned operations "
                  "weigh 0, so its entropy falls as it prunes); parameter-free: share of the final "
                  "genotype's operations without weights; stable rank: EVBMF stable rank of every cell convolution "
                  "(0 = all noise, docs/search.md), mean at the run's first and last probe; all-noise share: probe "
                  "rows with no component above the noise. Per seed: results.json, `variants`, `dynamics`."]
    return lines


def _settling(seeds: dict) -> str:
    cells = [f"{s['settled_at']}/{s['search_epochs']} ({s['share_of_final'][0]:.0%})"
             for s in (r.get("settling") for r in seeds.values()) if s]
    return ", ".join(cells) or "n/a"


def _with_reference(variant: dict) -> str:
    """The reference arm's record holds None; a results.json from before the measure lacks the key."""
    if "agreement_with_reference" not in variant:
        return "n/a"
    agreement = variant["agreement_with_reference"]
    if agreement is None:
        return "reference"
    return f"{agreement['edges_and_ops']:.1%} ({agreement['identical_genotypes']} identical)"


def _control_relation(budget: dict) -> str:
    """">=" for a run made in one sitting; "FEWER than" where a --resume changed the IAC budget after the control
    trained (the kept control is then reported as it was trained, not as the new budget would size it)."""
    trained = budget["control_epochs"] * budget["iterations_per_epoch"]
    return ">=" if trained >= budget["iac_batches"]["batches"] else "FEWER than"


def base_curve_line(curve: dict | None) -> str:
    """Whether the base had stopped improving (nnunet_iac/benchmark/plateau.py)."""
    if not curve or curve.get("gain_last_fraction") is None:
        return "Base curve: too few epochs to judge a plateau."
    verdict = "met: the base is at its plateau" if curve["met"] else \
        "NOT met: the base was still improving, an arm that trains it further gains from that alone"
    picture = f"; curve: {curve['curve']}" if curve.get("curve") else ""
    return (f"Base curve: nnU-Net's EMA pseudo-Dice gained {100 * curve['gain_last_fraction']:+.2f} points over the "
            f"last {curve['fraction']:.0%} of its {curve['epochs']} epochs (final {curve['ema_final']:.4f}); plateau "
            f"criterion (< {100 * curve['threshold']:.1f} points) {verdict}{picture}.")


def budget_table(results: dict) -> list[str]:
    b, paper = results["budget"], results["paper_budget"]
    def epochs(n: int) -> str:
        return f"{n} epoch{'s' if n != 1 else ''} x {b['iterations_per_epoch']} iterations"

    rows = {
        "base": epochs(b["base_epochs"]),
        "search": f"{epochs(b['search_epochs'])}, of which {b['warmup_epochs']} warm-up",
        "retrain": epochs(b["retrain_epochs"]),
        "control": f"{epochs(b['control_epochs'])} ({_control_relation(b)} the {b['iac_batches']['batches']} batches "
                   f"of the IAC arm)",
    }
    lines = ["| stage | this run | paper (full) | nnU-Net full length |", "|---|---|---|---|"]
    for stage, this_run in rows.items():
        lines.append(f"| {stage} | {this_run} | {paper[stage]['paper']} | {paper[stage]['nnunet_default']} |")
    patch = "x".join(map(str, b["patch_size_used"]))
    width = (f", the network's features per stage divided by {b['features_divisor']}"
             if b.get("features_divisor", 1) > 1 else "")
    lines += ["", f"All arms: batch {b['batch_size']}, patch {patch}{width}, {b['val_iterations_per_epoch']} monitoring "
                  f"batches per epoch; prediction {'with' if b['tta'] else 'without'} mirroring, step size "
                  f"{b['step_size']}."]
    return lines


def stage_table(stages: dict) -> list[str]:
    lines = ["| stage | wall time | peak memory (process tree RSS) |", "|---|---|---|"]
    for name, s in stages.items():
        lines.append(f"| {name} | {s['seconds']:.0f} s | {_mib(s['peak_memory_bytes'])} |")
    return lines


def _share(share: dict) -> str:
    if not share["epochs"]:
        return "n/a"
    return f"{share['median']:.2f} ({share['above_1']:.0%} / {share['above_2']:.0%})"


def signal_table(results: dict) -> list[str]:
    """Gradient SNR per seed: median over epochs (share of epochs above 1, the noise floor / above 2)."""
    lines = ["| seed | search alpha | search beta | search projections per level | retrain projections per level |",
             "|---|---|---|---|---|"]
    for seed, r in results["iac_seeds"].items():
        signal = r.get("signal")
        if not signal:
            continue
        search, retrain = signal["search"], signal["retrain"]
        lines.append(f"| {seed} | {_share(search['alpha'])} | {_share(search['beta'])} | "
                     f"{'; '.join(_share(x) for x in search['projection'])} | "
                     f"{'; '.join(_share(x) for x in retrain['projection']) or 'n/a'} |")
    lines += ["", "Median gradient SNR over the epochs after warm-up (share of those epochs with SNR > 1 / > 2); "
                  "pure noise gives ~1 (nnunet_iac/search/signal_monitor.py, docs/signal_diagnostics.md)."]
    return lines


def selected_note(selection: dict | None) -> dict[str, str]:
    """The budget ``iac_selected`` consumed, put beside its paired rows (issue 37)."""
    batches = (selection or {}).get("batches")
    if not batches:
        return {}
    return {"iac_selected": f"{batches['batches']:,} batches, {batches['times_iac']:.1f}x one IAC seed's: "
                            f"{batches['searches']} searches + {batches['trials']} trials + its retrain"}


def statistics_text(results: dict) -> list[str]:
    """What the paired table rests on: level, what is resampled, empty cases, epoch choice, how many rows."""
    info = results["benchmark"]
    method = info.get("statistics")
    counts = ", ".join(f"{len(rows)} on {case_set}" for case_set, rows in results["paired"].items())
    if not method:  # a results.json written before issue 37
        return ["Per case: the mean over classes of nnU-Net's per-case Dice (classes empty in both reference and "
                "prediction left out); interval and p-value over the cases only, not over training seeds. "
                f"Comparisons in this table: {counts}."]
    return [f"Per case: the mean over classes of nnU-Net's per-case Dice, where {method['empty_rule_paired']}; "
            f"the headline Dice above keeps {method['empty_rule_headline']}. Intervals at {method['level']:.0%}, "
            f"{method['bootstrap_samples']:,} resamples: 'cases' is the {method['interval_cases']}; 'seeds and "
            f"cases' the {method['interval_seeds_and_cases']}. p-values: {method['p_values']}. Comparisons in "
            f"this table: {counts}; at 95 % about one row in twenty excludes zero by chance where nothing differs. "
            f"Epoch choice: {info['epoch_rule']}."]


def markdown(results: dict) -> str:
    info, params = results["benchmark"], results["parameters"]
    sets = results["sets"]
    lines = [f"# IAC benchmark: {info['dataset']}, {info['configuration']}, fold {info['fold']}"
             + (" (SMOKE RUN: a few iterations, the numbers mean nothing)" if info["smoke"] else ""), "",
             f"Run on {info['date']}, device {info['device']}, {info['cpu_count']} CPU cores; total wall time "
             f"{results['total_seconds'] / 60:.1f} min. Validation: the {sets['validation']['cases']} validation cases "
             f"of fold {info['fold']}. Test: {sets['test']['cases']} cases, {sets['test']['source']}. Regime: "
             f"{info.get('regime', 'short')} (every arm predicts with {info.get('checkpoint', 'checkpoint_final.pth')}; "
             f"docs/benchmarks.md).", "",
             "## Dice (nnUNetv2_predict + nnUNetv2_evaluate_folder)", "", *dice_table(results["dice"]), ""]
    if results.get("arms"):
        lines += ["## Every arm (mean Dice over classes)", "", *arms_table(results["arms"]), "",
                  f"Controls fine-tune the base for the IAC arm's batches: "
                  f"{REGIMES[info.get('regime', 'short')].controls_described}; `random_seed*` retrain a genotype "
                  f"drawn uniformly from the search's space with IAC's Stage-III budget. Figure: dice.png.", ""]
    lines += ["## Ratios measured in this run", "", *ratio_table(results["ratios"]), "",
              "## Parameters", "",
              f"Base {params['base']:,}; added by the discrete cells {params['added_by_cells']:,} "
              f"({params['added_fraction']:.2%} of the base, target <= {params['target_fraction']:.0%}: "
              f"{'met' if params['added_fraction'] <= params['target_fraction'] else 'NOT met'}); the search supernet "
              f"added {params['search_supernet_added']:,}.", "",
              "## Genotype (IAC arm, seed " + str(info["seeds"][0]) + ")", "", "```",
              Genotype.from_dict(results["genotype"]).describe(), "```", ""]
    if results.get("paired"):
        lines += ["## Paired differences per case", "",
                  *paired_table(results["paired"], selected_note(results.get("selection"))), "",
                  *statistics_text(results), "",
                  "Figure: forest.png, the rows of IAC against each control and random genotype on one axis with "
                  "zero marked (the seed-and-case interval where a side has several seeds).", ""]
    lines += ["## IAC per search seed", "", *seeds_table(results), ""]
    if results.get("variants"):
        lines += ["## IAC variants", "", *variants_table(results["variants"]), "",
                  "### What the search did to alpha and to the cells", "", *dynamics_table(results["variants"]), ""]
    if results.get("evolution_trials"):
        lines += ["## Evolutions re-judged by Stage-III trials (--select-evolution)", "",
                  *evolution_trials_table(results["evolution_trials"])]
    if results.get("selection"):
        lines += ["## Genotype selection (nnunet-iac select)", "", *selection_table(results["selection"]), ""]
    if results.get("random_genotypes"):
        lines += ["## Random genotypes", "", *random_genotypes_table(results["random_genotypes"]), ""]
    lines += ["## Gradient signal", "", *signal_table(results), ""]
    if info.get("iac_settings"):
        lines += ["## IAC settings", "", ", ".join(f"`{k}={v}`" for k, v in info["iac_settings"].items()), ""]
    lines += ["## Budgets", "", *budget_table(results), "", base_curve_line(results.get("base_curve")), "",
              "## Stages", "", *stage_table(results["stages"]), ""]
    return "\n".join(lines)


def write_results(folder: Path, results: dict) -> tuple[Path, Path]:
    json_file, md_file = folder / "results.json", folder / "results.md"
    json_file.write_text(json.dumps(results, indent=2))
    md_file.write_text(markdown(results))
    return json_file, md_file
