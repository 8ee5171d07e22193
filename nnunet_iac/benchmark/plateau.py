"""Has the base stopped improving? The criterion the plateau regime states, applied to every base the benchmark
trains.

A base trained for a short budget whose learning rate decayed early is under-trained, and any arm that restarts
its learning rate gains from that alone (issue 14: the control's lead shrank from +0.9 to +0.08 points when
the base trained longer). The claim IAC makes is about a *trained* network. The criterion reads nnU-Net's own
curve, the EMA of the pseudo-Dice on the validation batches of each epoch (``ema_fg_dice`` in the checkpoint's
logging, what ``progress.png`` plots): the base is at its plateau when the EMA gained less than
``PLATEAU_GAIN`` over the last ``PLATEAU_FRACTION`` of its epochs.
"""
from __future__ import annotations

import math

PLATEAU_FRACTION = 0.25
PLATEAU_GAIN = 0.002  # 0.2 Dice points


def plateau_check(logging: dict, fraction: float = PLATEAU_FRACTION, gain: float = PLATEAU_GAIN) -> dict:
    """The EMA pseudo-Dice's gain over the last ``fraction`` of the epochs, and whether it is below ``gain``."""
    ema = [float(x) for x in logging.get("ema_fg_dice", [])]
    if len(ema) < 2:
        return {"epochs": len(ema), "met": False, "gain_last_fraction": None, "fraction": fraction,
                "threshold": gain, "ema_final": ema[-1] if ema else None}
    window = max(1, math.ceil(fraction * len(ema)))
    start = ema[-window - 1] if window < len(ema) else ema[0]
    change = ema[-1] - start
    return {"epochs": len(ema), "met": change < gain, "gain_last_fraction": change, "fraction": fraction,
            "threshold": gain, "ema_final": ema[-1], "ema_at_window_start": start}
