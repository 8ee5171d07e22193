"""The ``nnunet-iac`` command."""
from __future__ import annotations

import argparse
import logging
import sys


def _env(args) -> int:
    from nnunet_iac.trainer_path import export_line

    print(export_line())
    return 0


def _selfcheck(args) -> int:
    from nnunet_iac.selfcheck import main

    return main(args.steps)


def _show(args) -> int:
    from pathlib import Path

    from nnunet_iac.genotype import Genotype
    from nnunet_iac.plots import draw_genotype

    genotype = Genotype.load(args.genotype)
    picture = Path(args.output) if args.output else Path(args.genotype).with_suffix(".png")
    draw_genotype(genotype, picture, Path(args.genotype).name)
    print(genotype.describe())
    print(f"picture: {picture}")
    return 0


def _summary(args) -> int:
    from nnunetv2.paths import nnUNet_results
    from nnunetv2.utilities.dataset_name_id_conversion import maybe_convert_to_dataset_name

    from nnunet_iac.summary import summarize

    if not nnUNet_results:
        print("nnUNet_results is not set; set it as for nnU-Net itself.", file=sys.stderr)
        return 2
    print(summarize(nnUNet_results, maybe_convert_to_dataset_name(args.dataset), args.configuration,
                    args.plans).markdown())
    return 0


def _demo(args) -> int:
    from nnunet_iac.demo import main

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
    demo = sub.add_parser("demo", help="the whole loop on a small synthetic dataset through nnU-Net's commands "
                                       "(CPU, about 10 minutes)")
    demo.add_argument("--folder", default="nnunet_iac_demo", help="where every file of the demo goes")
    demo.add_argument("--device", default="cpu")
    demo.set_defaults(func=_demo)
    check = sub.add_parser("selfcheck", help="build, implant and search-step the Hippocampus 2d U-Net on random data")
    check.add_argument("--steps", type=int, default=3)
    check.set_defaults(func=_selfcheck)
    return parser


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (RuntimeError, ValueError) as e:
        print(f"nnunet-iac {args.command}: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
