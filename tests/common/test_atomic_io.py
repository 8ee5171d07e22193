import pytest

from nnunet_iac.common.atomic_io import atomic_destination, atomic_write_json
from nnunet_iac.nnunet.checkpointing import atomic_torch_save


def test_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "genotype.json"
    atomic_write_json(target, {"good": True})
    with pytest.raises(RuntimeError):
        with atomic_destination(target) as tmp:
            tmp.write_text("half a fi")
            raise RuntimeError("disk full")
    assert target.read_text().strip() == '{\n  "good": true\n}'
    assert sorted(p.name for p in tmp_path.iterdir()) == ["genotype.json"]


def test_torch_save_is_atomic_and_readable(tmp_path):
    import torch

    target = tmp_path / "checkpoint.pth"
    atomic_torch_save({"x": torch.ones(2)}, target)
    assert torch.equal(torch.load(target, weights_only=True)["x"], torch.ones(2))
    assert [p.name for p in tmp_path.iterdir()] == ["checkpoint.pth"]
