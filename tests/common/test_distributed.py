"""In one process (no process group) the DDP helpers change nothing, so the trainers need no branches for them;
their two-process behaviour is tested in tests/search/test_architecture_step_ddp.py and
tests/nnunet/test_ddp_trainers.py."""
import torch

from nnunet_iac.common import distributed


def test_without_a_process_group_every_helper_is_a_no_op():
    parameter = torch.nn.Parameter(torch.ones(3))
    parameter.grad = torch.full((3,), 2.0)
    untouched = torch.nn.Parameter(torch.ones(2))
    distributed.average_gradients([parameter, untouched])
    assert torch.equal(parameter.grad, torch.full((3,), 2.0)) and untouched.grad is None
    assert distributed.average_value(float("nan")) != distributed.average_value(float("nan"))
    assert distributed.average_value(1.5) == 1.5
    tensor = torch.arange(3.0)
    distributed.broadcast_tensors([tensor])
    assert torch.equal(tensor, torch.arange(3.0))
    with distributed.rank_zero_first():
        ran = True
    assert ran and distributed.rank() == 0 and not distributed.is_distributed()
