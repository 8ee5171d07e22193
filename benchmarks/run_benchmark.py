"""Alias of ``nnunet-iac benchmark`` (nnunet_iac/benchmark/run_benchmark.py), for the commands in older notes."""
import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script from the repository root
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from nnunet_iac.benchmark.run_benchmark import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
