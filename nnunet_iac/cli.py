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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="nnunet-iac", description="Implantable Adaptive Cells for nnU-Net v2.")
    sub = parser.add_subparsers(dest="command", required=True)
    env = sub.add_parser("env", help="print the export line that lets nnU-Net find the nnunet-iac trainers "
                                     "(use: eval \"$(nnunet-iac env)\")")
    env.set_defaults(func=_env)
    check = sub.add_parser("selfcheck", help="build, implant and search-step the Hippocampus 2d U-Net on random data")
    check.add_argument("--steps", type=int, default=3)
    check.set_defaults(func=_selfcheck)
    return parser


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
