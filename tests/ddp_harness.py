"""``nnUNetv2_train ... -num_gpus 2`` on the CPU: nnU-Net's ``run_ddp`` with the gloo backend, for the DDP tests.

``python tests/ddp_harness.py DATASET CONFIGURATION FOLD TRAINER [--c]`` in an nnU-Net environment (the
``nnUNet_*`` variables of ``tests/nnunet_workspace.py``). Each of the two processes does what nnU-Net's
``run_ddp`` does, with gloo instead of NCCL and no ``torch.cuda.set_device``: build the trainer with
nnU-Net's ``get_trainer_from_args``, ``maybe_load_checkpoint`` (``--c``), ``run_training``, the final
validation, and leave the process group. The trainer must keep the CPU device under DDP
(``tests/nnunet_trainers/nnUNetTrainerIACCPUDDP.py``). The exit status is 0 when both ranks finished.
"""
import argparse
import os
import sys
import tempfile

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

WORLD_SIZE = 2


def run_rank(rank: int, init_file: str, args: argparse.Namespace) -> None:
    from nnunetv2.run.run_training import get_trainer_from_args, maybe_load_checkpoint

    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=WORLD_SIZE)
    torch.set_num_threads(1)
    try:
        trainer = get_trainer_from_args(args.dataset, args.configuration, args.fold, args.trainer,
                                        continue_training=args.c, device=torch.device("cpu"))
        maybe_load_checkpoint(trainer, args.c, False)
        trainer.run_training()
        trainer.perform_actual_validation(False)
    finally:
        dist.destroy_process_group()


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("dataset")
    parser.add_argument("configuration")
    parser.add_argument("fold", type=int)
    parser.add_argument("trainer")
    parser.add_argument("--c", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        mp.spawn(run_rank, args=(os.path.join(folder, "init"), args), nprocs=WORLD_SIZE)
    return 0


if __name__ == "__main__":
    sys.exit(main())
