"""Run the benchmark's stages: nnU-Net commands with wall time, peak memory and a log of everything.

Every command goes to one log file (the command line, the variables the stage sets, its output).
Finished stages are recorded in ``stages.json``, so a benchmark interrupted after an hour can go on
with ``--resume`` instead of starting again: a recorded stage is not run a second time and keeps the
time and memory it was measured with. Each stage also records its sitting (when this runner started), so that
times measured in different sittings are not divided by one another (``predict_time``).
"""
from __future__ import annotations

import datetime
import json
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

from nnunet_iac.benchmark.process_memory import PeakMemorySampler


class StageError(RuntimeError):
    """A stage of the benchmark failed; the message names the command and the log."""


@dataclass
class StageResult:
    name: str
    seconds: float
    peak_memory_bytes: int | None
    command: str
    sitting: str = ""   # empty: recorded before stages named their sitting


class StageRunner:
    def __init__(self, folder: Path, env: dict[str, str], resume: bool = False):
        self.folder = folder
        self.env = env
        self.log = folder / "benchmark_log.txt"
        self.record = folder / "stages.json"
        self.results: dict[str, StageResult] = {}
        self.sitting = datetime.datetime.now().isoformat(timespec="seconds")
        if resume and self.record.is_file():
            self.results = {name: StageResult(**r) for name, r in json.loads(self.record.read_text()).items()}

    def records(self) -> dict[str, dict]:
        """Every finished stage as ``stages.json`` and ``results.json`` hold it."""
        return {name: asdict(result) for name, result in self.results.items()}

    def done(self, name: str) -> bool:
        return name in self.results

    def _save(self, result: StageResult) -> None:
        self.results[result.name] = result
        self.record.write_text(json.dumps(self.records(), indent=2))

    def note(self, text: str) -> None:
        """One line on the console and in the log."""
        print(text, flush=True)
        with open(self.log, "a") as log:
            log.write(f"\n# {text}\n")

    def run(self, name: str, *command: str, env: dict[str, str] | None = None) -> StageResult:
        """Run one of nnU-Net's commands (from this Python's bin folder) as stage ``name``."""
        if self.done(name):
            self.note(f"{name}: done in an earlier run, kept ({self.results[name].seconds:.0f} s)")
            return self.results[name]
        self.note(f"{name} ...")
        executable = Path(sys.executable).parent / command[0]
        line = " ".join(command)
        with open(self.log, "a") as log:
            settings = " ".join(f"{k}={v}" for k, v in sorted((env or {}).items()))
            log.write(f"$ {settings + ' ' if settings else ''}{line}\n")
            log.flush()
            start = time.time()
            process = subprocess.Popen([str(executable), *command[1:]], env={**self.env, **(env or {})},
                                       stdout=log, stderr=subprocess.STDOUT, cwd=self.folder)
            with PeakMemorySampler(process.pid) as memory:
                code = process.wait()
            seconds = time.time() - start
        if code != 0:
            tail = self.log.read_text()[-3000:]
            raise StageError(f"Stage '{name}' failed: '{line}' exited with {code}. Full log: {self.log}\n{tail}")
        result = StageResult(name, seconds, memory.peak_bytes, line, self.sitting)
        self._save(result)
        self.note(f"  {name}: {seconds:.0f} s")
        return result

    def step(self, name: str, action: Callable[[], object]) -> StageResult:
        """A stage done in this process (file preparation); timed, no memory figure."""
        if self.done(name):
            return self.results[name]
        self.note(f"{name} ...")
        start = time.time()
        action()
        result = StageResult(name, time.time() - start, None, f"(in-process) {name}", self.sitting)
        self._save(result)
        return result


class ScopedStages:
    """A StageRunner whose stage names carry a scope (`` (fold 3)``): the adaptation benchmark runs the same arms
    once per support set, and stages.json keys a stage by its name, so each set's stages must be named apart."""

    def __init__(self, runner: StageRunner, scope: str):
        self.runner, self.scope = runner, scope

    def run(self, name: str, *command: str, env: dict[str, str] | None = None) -> StageResult:
        return self.runner.run(f"{name}{self.scope}", *command, env=env)

    def step(self, name: str, action: Callable[[], object]) -> StageResult:
        return self.runner.step(f"{name}{self.scope}", action)

    def done(self, name: str) -> bool:
        return self.runner.done(f"{name}{self.scope}")

    def note(self, text: str) -> None:
        self.runner.note(text)
