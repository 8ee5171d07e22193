import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

# One intra-op thread for the tests' in-process torch work: on this project's 2-core machine, shared with other
# jobs, torch's default two threads made in-process tests 20-70x slower (2026-12-06, load 3-6: a test of
# tests/search/test_cost_aware.py took 79-247 s with two threads, 3.5 s with one, 3.1 s with two alone; the fast
# tier 15 min with two, 1 min 55 s with one). nnU-Net commands run in their own processes with the workspace's
# OMP_NUM_THREADS (tests/nnunet_workspace.py), which this leaves alone.
torch.set_num_threads(1)

#: fixtures that run nnU-Net end to end: ``workspace`` plans a synthetic dataset (nnUNetv2_plan_and_preprocess),
#: ``smoke``, ``paper`` and ``adapted`` run a whole benchmark (tests/bench); a test that asks for one of them,
#: directly or through another fixture, is in the slow tier
NNUNET_FIXTURES = frozenset({"workspace", "smoke", "paper", "adapted"})


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):
    """Marks the slow tier before ``-m`` selects: every ``integration`` test and every test of a fixture in
    NNUNET_FIXTURES. A rule rather than a mark per test, so that a new end-to-end test cannot slip into the fast
    tier (``pytest -m "not slow"``, which has to stay under 3 minutes) because its author forgot the mark."""
    for item in items:
        if item.get_closest_marker("integration") or NNUNET_FIXTURES.intersection(item.fixturenames):
            item.add_marker(pytest.mark.slow)


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
