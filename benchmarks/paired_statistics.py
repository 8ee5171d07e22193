"""Alias of ``nnunet-iac benchmark-stats`` (nnunet_iac/benchmark/paired_statistics.py)."""
import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script from the repository root
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from nnunet_iac.benchmark.paired_statistics import main  # noqa: E402

if __name__ == "__main__":
    main()
