"""The ``nnunet-iac`` command."""
from __future__ import annotations

import argparse
import logging
import sys


def _env(args) -> int:
    from nnunet_iac.nnunet.trainer_path import export_line

    print(export_line())
    return 0


def _selfcheck(args) -> int:
    from nnunet_iac.tools.selfcheck import main

    return main(args.steps)


def _show(args) -> int:
    from pathlib import Path

    from nnunet_iac.cells.genotype import Genotype
    from nnunet_iac.search.plots import draw_genotype

    genotype = Genotype.load(args.genotype)
    picture = Path(args.output) if args.output else Path(args.genotype).with_suffix(".png")
    draw_genotype(genotype, picture, Path(args.genotype).name)
    print(genotype.describe())
    print(f"picture: {picture}")
    return 0


def _results_dir() -> str:
    from nnunetv2.paths import nnUNet_results

    if not nnUNet_results:
        raise RuntimeError("nnUNet_results is not set; set it as for nnU-Net itself.")
    return nnUNet_results


def _summary(args) -> int:
    from nnunetv2.utilities.dataset_name_id_conversion import maybe_convert_to_dataset_name

    from nnunet_iac.tools.summary import summarize

    print(summarize(_results_dir(), maybe_convert_to_dataset_name(args.dataset), args.configuration,
                    args.plans).markdown())
    return 0


def _select(args) -> int:
    from nnunetv2.utilities.dataset_name_id_conversion import maybe_convert_to_dataset_name

    from nnunet_iac.selection.select_genotype import SelectOptions, select_genotype, selection_table
    from nnunet_iac.nnunet.retrain_setup import default_genotype_path
    from nnunet_iac.selection.trial import TrialJob

    dataset = maybe_convert_to_dataset_name(args.dataset)
    search = default_genotype_path(_results_dir(), dataset, args.plans, args.configuration, args.fold,
                                   args.search_trainer).parent
    options = SelectOptions(args.candidates, args.epochs, args.iterations, args.val_iterations, args.device,
                            tuple(args.histories), args.from_evolution, args.tolerance)
    logging.getLogger("nnunet_iac.selection.select_genotype").setLevel(logging.INFO)
    job = TrialJob(dataset, args.configuration, args.fold, args.plans, args.trial_trainer)
    selection = select_genotype(search, job, options)
    print(selection_table(selection, search))
    return 0


def _domain_split(args) -> int:
    from pathlib import Path

    from nnunet_iac.benchmark.domain_split import split_by_domain

    out = args.out or _raw_dir()
    source, target = split_by_domain(Path(args.raw), Path(args.domains), Path(out), args.source, args.target,
                                      args.column, args.source_id, args.target_id, args.target_test, args.seed)
    print(f"source: {source}\ntarget: {target} (test set in imagesTs/labelsTs)")
    return 0


def _raw_dir() -> str:
    from nnunetv2.paths import nnUNet_raw

    if not nnUNet_raw:
        raise RuntimeError("nnUNet_raw is not set; set it as for nnU-Net itself, or pass --out.")
    return nnUNet_raw


def _demo(args) -> int:
    from nnunet_iac.tools.demo import main

    return main(args.folder, args.device)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="nnunet-iac", description="Implantable Adaptive Cells for nnU-Net v2.")
    sub = parser.add_subparsers(dest="command", required=True)
    env = sub.add_parser("env", help="print the export line that lets nnU-Net find the nnunet-iac trainers "
                                     "(use: eval \"$(nnunet-iac env)\")")
    env.set_defaults(func=_env)
    show = sub.add_parser("show", help="print a genotype and draw it as a PNG")
    show.add_argument("genotype", help="a genotype.json")
    show.add_argument("-o", "--output", help="PNG to write (default: next to the genotype)")
    show.set_defaults(func=_show)
    summary = sub.add_parser("summary", help="base vs IAC validation Dice, parameters added and genotype")
    summary.add_argument("-d", "--dataset", required=True, help="dataset name or id, as for nnUNetv2_train")
    summary.add_argument("-c", "--configuration", required=True)
    summary.add_argument("-p", "--plans", default="nnUNetPlans")
    summary.set_defaults(func=_summary)
    select = sub.add_parser("select", help="retrain the most frequent genotypes of a search (or one per number of "
                                           "levels of an evolution's) briefly on train_search and keep the best on "
                                           "val_search (genotype_selected.json)")
    select.add_argument("-d", "--dataset", required=True, help="dataset name or id, as for nnUNetv2_train")
    select.add_argument("-c", "--configuration", required=True)
    select.add_argument("-f", "--fold", required=True, help="the fold of the search")
    select.add_argument("-p", "--plans", default="nnUNetPlans")
    select.add_argument("--candidates", type=int, default=3, help="how many of the most frequent distinct "
                                                                  "genotypes to train (default 3)")
    select.add_argument("--epochs", type=int, default=10, help="epochs per candidate (default 10)")
    select.add_argument("--iterations", type=int, default=100, help="training iterations per epoch (default 100)")
    select.add_argument("--val-iterations", type=int, default=5, help="val_search monitoring batches per epoch "
                                                                      "(default 5)")
    select.add_argument("--histories", nargs="+", default=[], metavar="HISTORY",
                        help="more search_history.json files (or search fold folders), e.g. searches with other "
                             "nnUNet_IAC_seed on the same base, counted together")
    select.add_argument("--from-evolution", action="store_true",
                        help="candidates from the search's evolution.json (nnUNet_IAC_strategy=nsga2): the point its "
                             "supernet scored best for every number of cell levels; the cheapest trial within "
                             "--tolerance of the best wins (--candidates does not apply)")
    select.add_argument("--tolerance", type=float, default=None,
                        help="with --from-evolution: val_search Dice (0 to 1) the cheaper winner may lose to the best "
                             "trial (default: the search's nnUNet_IAC_evolution_tolerance)")
    select.add_argument("--search-trainer", default="nnUNetTrainerIACSearch",
                        help="the trainer the search ran with (-tr of the search; default nnUNetTrainerIACSearch)")
    select.add_argument("--trial-trainer", default="nnUNetTrainerIACRetrainTrial",
                        help="the trainer of the trials: Stage III on train_search, validated on val_search (default "
                             "nnUNetTrainerIACRetrainTrial, nnU-Net's recipe)")
    select.add_argument("--device", default="cuda", choices=["cuda", "cpu", "mps"], help="as nnUNetv2_train -device")
    select.set_defaults(func=_select)
    front = sub.add_parser("pareto", help="genotypes of several searches (e.g. a cost_lambda sweep) as accuracy and "
                                          "cost points: the Pareto front and the best one within your limits")
    front.add_argument("searches", nargs="+", help="search fold folders (each with genotype.json, "
                                                    "search_history.json and operation_costs.json)")
    front.add_argument("-o", "--output", default=".", help="folder for pareto.json and pareto.png (default .)")
    front.add_argument("--max-latency-ms", type=float, help="largest added latency (ms at batch 1) to choose")
    front.add_argument("--max-added-parameters", type=int, help="most added parameters to choose")
    front.set_defaults(func=_pareto)
    demo = sub.add_parser("demo", help="the whole loop on a small synthetic dataset through nnU-Net's commands "
                                       "(CPU, about 10 minutes)")
    demo.add_argument("--folder", default="nnunet_iac_demo", help="where every file of the demo goes")
    demo.add_argument("--device", default="cpu")
    demo.set_defaults(func=_demo)
    split = sub.add_parser("domain-split", help="two nnU-Net raw datasets, source and target domain, from one "
                                                "dataset and a table of each case's domain (adaptation, issue 36)")
    split.add_argument("raw", help="an nnU-Net raw dataset folder, e.g. ../shared/data/Dataset902_DSB2018Nuclei")
    split.add_argument("--domains", required=True, help="tab-separated table with a 'case' column and the domain "
                                                        "column, e.g. .../Dataset902_DSB2018Nuclei/domains.tsv")
    split.add_argument("--column", default="domain", help="the table's column to split by (default domain)")
    split.add_argument("--source", required=True, help="the column's value of the source domain, e.g. fluorescence")
    split.add_argument("--target", required=True, help="the column's value of the target domain, e.g. brightfield")
    split.add_argument("--source-id", type=int, default=903, help="dataset id of the source (default 903)")
    split.add_argument("--target-id", type=int, default=904, help="dataset id of the target (default 904)")
    split.add_argument("--target-test", type=int, default=40,
                       help="target cases held out as the fixed target test set (default 40)")
    split.add_argument("--seed", type=int, default=0, help="seed of the target test set's draw (default 0)")
    split.add_argument("--out", help="where the two datasets go (default $nnUNet_raw)")
    split.set_defaults(func=_domain_split)
    sub.add_parser("benchmark", add_help=False,
                   help="does IAC help on this dataset? base, IAC, random genotypes and controls through nnU-Net's "
                        "commands, with paired statistics (nnunet-iac benchmark --help; docs/benchmarks.md)")
    sub.add_parser("benchmark-stats", add_help=False,
                   help="the paired per-case table of finished benchmark folders (nnunet-iac benchmark-stats OUT...)")
    check = sub.add_parser("selfcheck", help="build, implant and search-step the Hippocampus 2d U-Net on random data")
    check.add_argument("--steps", type=int, default=3)
    check.set_defaults(func=_selfcheck)
    return parser


#: subcommands with their own argument parser: ``nnunet-iac benchmark ARGS`` is the benchmark's command line
DELEGATED = ("benchmark", "benchmark-stats")


def _delegate(command: str, argv: list[str]) -> int:
    if command == "benchmark":
        from nnunet_iac.benchmark.run_benchmark import main as benchmark
        return benchmark(argv)
    from nnunet_iac.benchmark.paired_statistics import main as stats
    stats(argv)
    return 0


def _pareto(args) -> int:
    from nnunet_iac.selection.pareto import pareto

    record = pareto(args.searches, args.output, args.max_latency_ms, args.max_added_parameters)
    points = {p["name"]: p for p in record["points"]}
    print("| search | score | added parameters | added latency (ms) | front |")
    print("|---|---|---|---|---|")
    for name, p in points.items():
        mark = "chosen" if name == record["chosen"] else ("yes" if name in record["front"] else "")
        print(f"| {name} | {p['score']:.4f} | {p['added_parameters']:,} | {p['latency_ms']:.2f} | {mark} |")
    print(f"score: {record['points'][0]['score_source']}; written: {args.output}/pareto.json and pareto.png")
    return 0


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv and argv[0] in DELEGATED:
        return _delegate(argv[0], argv[1:])
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (RuntimeError, ValueError) as e:
        print(f"nnunet-iac {args.command}: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
