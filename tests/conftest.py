import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


@pytest.fixture(scope="session")
def workspace(tmp_path_factory):
    """A planned synthetic dataset (2d and 3d_fullres) in a temporary nnU-Net folder tree."""
    from nnunet_workspace import Workspace

    ws = Workspace(tmp_path_factory.mktemp("nnunet"))
    ws.prepare()
    return ws
