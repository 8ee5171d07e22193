"""nnU-Net must find our trainers through nnUNet_extTrainer, from a fresh process, as the README says."""
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TRAINERS = ("nnUNetTrainerIACSearch", "nnUNetTrainerIACRetrain", "nnUNetTrainerIACRetrainTrial",
            "nnUNetTrainerIACSearch_50epochs", "nnUNetTrainerIACSearch_noDA", "nnUNetTrainerIACRetrain_noDA")
#: the benchmark's trainers, in the trainer folder's benchmarking/ subfolder (nnunet-iac benchmark runs them)
BENCHMARK_TRAINERS = ("nnUNetTrainerBench", "nnUNetTrainerBenchControlDecoder", "nnUNetTrainerIACRetrainPaper")


def run_python(code, env_extra=None):
    env = {**os.environ, **(env_extra or {})}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd="/")


def test_env_command_points_nnunet_at_the_trainers_folder():
    result = subprocess.run([sys.executable, "-m", "nnunet_iac", "env"], capture_output=True, text=True,
                            env={**os.environ, "nnUNet_extTrainer": "/some/other/folder"})
    assert result.returncode == 0, result.stderr
    line = result.stdout.strip()
    assert line.startswith("export nnUNet_extTrainer=")
    folders = line.split("=", 1)[1].strip('"').split(os.pathsep)
    assert (Path(folders[0]) / "nnUNetTrainerIACSearch.py").is_file()
    assert folders[1:] == ["/some/other/folder"]


def test_nnunet_finds_the_trainers_in_a_fresh_process():
    """One fresh interpreter looks up every trainer by name, as nnUNetv2_train does (a lookup imports all of
    nnU-Net's trainer modules once; a process per trainer cost ~9 s each here)."""
    from nnunet_iac.nnunet.trainer_path import trainers_dir

    names = TRAINERS + BENCHMARK_TRAINERS
    code = ("from nnunetv2.utilities.find_objects import recursive_find_trainer_class_by_name as f\n"
            f"for name in {names!r}:\n"
            "    print('FOUND', name, f(name).__name__)\n")
    result = run_python(code, {"nnUNet_extTrainer": str(trainers_dir())})
    assert result.returncode == 0, result.stdout + result.stderr
    found = [line.split()[1:] for line in result.stdout.splitlines() if line.startswith("FOUND")]
    assert found == [[name, name] for name in names], result.stdout


@pytest.mark.slow  # a fresh interpreter per trainer module: 51-85 s on 2 cores (2026-12-06)
def test_trainer_modules_import_cleanly_on_their_own():
    from nnunet_iac.nnunet.trainer_path import trainers_dir

    for module in sorted(p for p in trainers_dir().rglob("*.py") if p.name != "__init__.py"):
        code = f"import sys; sys.path.insert(0, {str(module.parent)!r}); import {module.stem}"
        result = run_python(code)
        assert result.returncode == 0, f"{module.name}: {result.stderr}"


def test_wheel_ships_the_trainers(tmp_path):
    result = subprocess.run([sys.executable, "-m", "pip", "wheel", str(ROOT), "--no-deps", "--no-build-isolation",
                             "-q", "-w", str(tmp_path)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    wheel = next(tmp_path.glob("nnunet_iac-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    for trainer in TRAINERS:
        assert f"nnunet_iac/trainers/{trainer}.py" in names
    assert "nnunet_iac/trainers/benchmarking/nnUNetTrainerBench.py" in names
    # every module of every subpackage: a subpackage missing from pyproject's list would vanish from the wheel
    modules = {f"nnunet_iac/{p.relative_to(ROOT / 'nnunet_iac').as_posix()}" for p in (ROOT / "nnunet_iac").rglob("*.py")
               if "__pycache__" not in p.parts and p.parent.name != "trainers"}
    assert "nnunet_iac/cells/genotype.py" in modules and not modules - names, sorted(modules - names)
