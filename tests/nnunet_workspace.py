"""One tiny planned-and-preprocessed nnU-Net dataset and tiny trained bases, shared by integration tests."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

from nnunet_iac.tools.synthetic_dataset import make_synthetic_dataset
from nnunet_iac.nnunet.trainer_path import trainers_dir

DATASET_ID = 990
DATASET = "Dataset990_IACSynthetic"
BASE_TRAINER = "nnUNetTrainerTinyBase"
TEST_TRAINERS = Path(__file__).resolve().parent / "nnunet_trainers"
BIN = Path(sys.executable).parent
#: nnU-Net's residual-encoder preset (nnUNetPlannerResEncM) reduced to CPU size; see reduced_resenc_plans
RESENC_PLANS = "nnUNetResEncTinyPlans"


class Workspace:
    def __init__(self, root: Path):
        self.root = root
        self.env = {
            **os.environ,
            "nnUNet_raw": str(root / "raw"),
            "nnUNet_preprocessed": str(root / "preprocessed"),
            "nnUNet_results": str(root / "results"),
            "nnUNet_extTrainer": os.pathsep.join([str(trainers_dir()), str(TEST_TRAINERS)]),
            "nnUNet_n_proc_DA": "0",
            "nnUNet_def_n_proc": "1",
            "OMP_NUM_THREADS": "2",
        }
        for key in [k for k in self.env if k.startswith("nnUNet_IAC_")]:
            del self.env[key]

    @property
    def results(self) -> Path:
        return Path(self.env["nnUNet_results"]) / DATASET

    def run(self, *args: str, env: dict | None = None, check: bool = True) -> subprocess.CompletedProcess:
        command = [str(BIN / args[0]), *args[1:]]
        result = subprocess.run(command, env={**self.env, **(env or {})}, capture_output=True, text=True,
                                cwd=self.root)
        if check and result.returncode != 0:
            raise AssertionError(f"{' '.join(args)} failed ({result.returncode}):\n{result.stdout[-4000:]}\n"
                                 f"{result.stderr[-4000:]}")
        return result

    def prepare(self) -> None:
        make_synthetic_dataset(self.env["nnUNet_raw"], DATASET_ID, num_cases=10, num_test_cases=2)
        # planning needs nnUNet_n_proc_DA >= 1 (it sets torch threads from it)
        self.run("nnUNetv2_plan_and_preprocess", "-d", str(DATASET_ID), "-c", "2d", "3d_fullres", "-np", "1",
                 "-npfp", "1", env={"nnUNet_n_proc_DA": "1"})

    def base_folder(self, configuration: str) -> Path:
        return self.results / f"{BASE_TRAINER}__nnUNetPlans__{configuration}"

    def train_base(self, configuration: str) -> Path:
        folder = self.base_folder(configuration)
        if not (folder / "fold_0" / "checkpoint_final.pth").is_file():
            self.run("nnUNetv2_train", str(DATASET_ID), configuration, "0", "-tr", BASE_TRAINER, "-device", "cpu")
        return folder


def reduced_resenc_plans(planned: dict, configuration: str = "2d") -> dict:
    """The ResEnc M plan of ``configuration`` only, small enough for a CPU test: one residual block per encoder
    stage, half the features, batch 2. The network class stays ResidualEncoderUNet, and the planner's data
    identifier (nnUNetPlans_<configuration>, shared with the default plans) lets the preprocessed data serve it."""
    plan = json.loads(json.dumps(planned["configurations"][configuration]))
    kwargs = plan["architecture"]["arch_kwargs"]
    kwargs["n_blocks_per_stage"] = [1] * kwargs["n_stages"]
    kwargs["features_per_stage"] = [max(8, f // 2) for f in kwargs["features_per_stage"]]
    plan["batch_size"] = 2
    return {**planned, "plans_name": RESENC_PLANS, "configurations": {configuration: plan}}


def plan_resenc(workspace: Workspace, configuration: str = "2d") -> str:
    """Plan the prepared dataset with nnUNetPlannerResEncM and write its reduced copy as RESENC_PLANS (once)."""
    folder = Path(workspace.env["nnUNet_preprocessed"]) / DATASET
    target = folder / f"{RESENC_PLANS}.json"
    if not target.is_file():
        workspace.run("nnUNetv2_plan_experiment", "-d", str(DATASET_ID), "-pl", "nnUNetPlannerResEncM",
                      env={"nnUNet_n_proc_DA": "1"})
        planned = json.loads((folder / "nnUNetResEncUNetMPlans.json").read_text())
        target.write_text(json.dumps(reduced_resenc_plans(planned, configuration), indent=2))
    return RESENC_PLANS


def train_base_with_plans(workspace: Workspace, configuration: str, plans: str) -> Path:
    """Like Workspace.train_base, for plans other than the default nnUNetPlans."""
    folder = workspace.results / f"{BASE_TRAINER}__{plans}__{configuration}"
    if not (folder / "fold_0" / "checkpoint_final.pth").is_file():
        workspace.run("nnUNetv2_train", str(DATASET_ID), configuration, "0", "-tr", BASE_TRAINER, "-p", plans,
                      "-device", "cpu")
    return folder


def training_logs(fold_folder: Path) -> set[Path]:
    """nnU-Net's logs of a fold: one ``training_log_<time>.txt`` per nnUNetv2_train process."""
    return set(fold_folder.glob("training_log_*.txt"))


def epochs_started(log_file: Path) -> list[int]:
    """The epochs a training process began, read from nnU-Net's ``Epoch N`` log lines."""
    return [int(m.group(1)) for m in re.finditer(r": Epoch (\d+) *$", log_file.read_text(), re.MULTILINE)]


#: how a write beyond RLIMIT_FSIZE fails: Python's OSError (EFBIG), torch.save's zip writer
WRITE_FAILURES = ("File too large", "unexpected pos", "file write failed")


def assert_failed_write_kept_the_previous_files(result: subprocess.CompletedProcess, folder: Path, snapshot: Path,
                                                names) -> None:
    """The run stopped on the failed write; ``names`` are byte-identical to their state before the failing epoch,
    and no temporary file is left next to them."""
    assert result.returncode not in (0, 3)
    assert any(m in result.stderr for m in WRITE_FAILURES), result.stderr[-2000:]
    for name in names:
        assert (folder / name).read_bytes() == (snapshot / name).read_bytes(), name
    assert not [p.name for p in folder.iterdir() if p.name.startswith(".")]


def load_predictor(workspace: Workspace, monkeypatch, model_folder: Path, folds=(0,)):
    """nnU-Net's own predictor for ``model_folder``, in this process, with the workspace's nnU-Net folders."""
    import torch

    for key, value in workspace.env.items():
        if key.startswith("nnUNet_"):
            monkeypatch.setenv(key, value)
    from nnunetv2.inference.predict_from_raw_data import nnUNetPredictor
    from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer  # noqa: F401  (import order)

    predictor = nnUNetPredictor(device=torch.device("cpu"), perform_everything_on_device=False)
    predictor.initialize_from_trained_model_folder(str(model_folder), use_folds=folds)
    return predictor


def reference_network(workspace: Workspace, fold_folder: Path, configuration: str = "2d",
                      plans: str = "nnUNetPlans"):
    """The trained network rebuilt without the model folder's plans.json: the base architecture of the dataset's
    own ``plans`` file, genotype.json and the cell options of iac_settings.json, implanted with the library's
    functions, with the fold's final weights loaded strictly (the independent reference of prediction tests)."""
    from nnunetv2.utilities.get_network_from_plans import get_network_from_plans
    from nnunetv2.utilities.plans_handling.plans_handler import PlansManager

    from nnunet_iac.cells.genotype import Genotype
    from nnunet_iac.network.builders import CellOptions, implant_discrete_cells
    from nnunet_iac.nnunet.checkpointing import safe_load

    preprocessed = workspace.root / "preprocessed" / DATASET
    plan = PlansManager(str(preprocessed / f"{plans}.json")).get_configuration(configuration)
    labels = json.loads((preprocessed / "dataset.json").read_text())["labels"]
    base = get_network_from_plans(plan.network_arch_class_name, plan.network_arch_init_kwargs,
                                  plan.network_arch_init_kwargs_req_import, 1, len(labels), deep_supervision=False)
    settings = json.loads((fold_folder / "iac_settings.json").read_text())
    options = CellOptions(k=settings["k"], width_divisor=settings["width_divisor"], mode=settings["mode"])
    network = implant_discrete_cells(base, Genotype.load(fold_folder / "genotype.json"), options)
    network.load_state_dict(safe_load(fold_folder / "checkpoint_final.pth")["network_weights"])
    return network.eval()
