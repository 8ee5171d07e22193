"""Peak resident memory of a command and every process it starts, sampled from Linux's /proc.

nnU-Net's commands start worker processes (data augmentation, preprocessing, export), so the memory a
stage needs is that of the whole process tree. psutil is not a dependency; /proc gives the same
numbers. Each sample sums VmRSS over the tree (what the machine holds at that moment); the largest
single-process VmHWM (the kernel's own peak) catches a single process's peak between two samples. On
systems without /proc the peak is unknown (None) and the benchmark reports it as such.
"""
from __future__ import annotations

import os
import threading
from pathlib import Path

PROC = Path("/proc")


def _parent_of(pid: int) -> int | None:
    try:
        stat = (PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    # the command name (field 2) is in parentheses and may hold spaces; ppid is the 2nd field after it
    return int(stat.rsplit(")", 1)[1].split()[1])


def _status_kib(pid: int, field: str) -> int:
    try:
        for line in (PROC / str(pid) / "status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return 0


def process_tree(root: int) -> list[int]:
    """``root`` and all its living descendants."""
    children: dict[int, list[int]] = {}
    for entry in PROC.iterdir():
        if entry.name.isdigit():
            parent = _parent_of(int(entry.name))
            if parent is not None:
                children.setdefault(parent, []).append(int(entry.name))
    tree, todo = [], [root]
    while todo:
        pid = todo.pop()
        tree.append(pid)
        todo.extend(children.get(pid, []))
    return tree


class PeakMemorySampler:
    """Samples the tree of ``pid`` every ``interval`` seconds in a background thread until ``stop()``."""

    def __init__(self, pid: int, interval: float = 0.25):
        self.pid = pid
        self.interval = interval
        self.available = PROC.is_dir() and os.name == "posix"
        self._peak_kib = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> "PeakMemorySampler":
        if self.available:
            self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def _sample(self) -> None:
        tree = process_tree(self.pid)
        total = sum(_status_kib(pid, "VmRSS") for pid in tree)
        largest = max((_status_kib(pid, "VmHWM") for pid in tree), default=0)
        self._peak_kib = max(self._peak_kib, total, largest)

    def _run(self) -> None:
        while not self._stop.is_set():
            self._sample()
            self._stop.wait(self.interval)

    def stop(self) -> None:
        if self._thread.is_alive():
            self._stop.set()
            self._thread.join()

    @property
    def peak_bytes(self) -> int | None:
        return self._peak_kib * 1024 if self.available and self._peak_kib else None
