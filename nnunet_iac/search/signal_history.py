"""Per-epoch signal diagnostics as JSON rows: NaN as null, and a file the retrain can resume into.

The search keeps its diagnostics in ``search_history.json`` (one row per epoch with everything else);
the retrain has no history of its own, so its rows go to ``signal_history.json``. A row replaces any
row of the same or a later epoch, so a run continued with ``--c`` from an older checkpoint rewrites
the epochs it repeats instead of keeping two versions of them.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

from nnunet_iac.common.atomic_io import atomic_write_json

SIGNAL_HISTORY_FILE = "signal_history.json"


def json_number(value):
    """A float (or a list of them) with NaN / inf as None, which JSON can hold; None stays None."""
    if value is None:
        return None
    if isinstance(value, (list, tuple)):
        return [json_number(v) for v in value]
    value = float(value)
    return value if math.isfinite(value) else None


def load_signal_rows(path: Path) -> list[dict]:
    path = Path(path)
    if not path.is_file():
        return []
    try:
        rows = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise ValueError(f"{path} is not valid JSON ({e}); delete it, the next epoch writes a new one.") from e
    if not isinstance(rows, list) or not all(isinstance(r, dict) and "epoch" in r for r in rows):
        raise ValueError(f"{path} is not a list of rows with an 'epoch'; delete it, the next epoch writes a new one.")
    return rows


def record_signal_epoch(path: Path, epoch: int, values: dict) -> list[dict]:
    """Write ``values`` as the row of ``epoch`` (dropping rows from ``epoch`` on); returns all rows."""
    rows = [r for r in load_signal_rows(path) if r["epoch"] < epoch]
    rows.append({"epoch": epoch, **{key: json_number(v) for key, v in values.items()}})
    atomic_write_json(path, rows)
    return rows
