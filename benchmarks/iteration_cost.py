"""Time one search iteration (alpha/beta step + cell step) against one plain nnU-Net training step.

Same network (nnU-Net's Hippocampus 2d or 3d_fullres U-Net), same batch, same loss (nnU-Net's Dice+CE with deep
supervision), on whatever device is given. Usage:
    python -m benchmarks.iteration_cost --batch 32 --iterations 10 [--device cuda]
    python -m benchmarks.iteration_cost --dim 3 --batch 6 --iterations 3
    python -m benchmarks.iteration_cost --batch 32 --iterations 10 --cell-optimizer adas
    python -m benchmarks.iteration_cost --batch 32 --iterations 10 --operations one

``--operations`` times the supernet as a pruning search leaves it: ``all`` (PC-DARTS throughout, and a pruning
search before it prunes), ``two`` / ``one`` (two operations / one left on every edge, drawn with --mask-seed:
LTH's last epochs / where LTH and Shapley end) and ``none`` (only ``zero`` left: the cells' frame alone, the
least any search of these cells can cost per iteration). ``computed_edge_operations`` counts the (operation, edge) pairs one forward computes (a
parameter-free operation counts on every edge of its node: it is computed once for all of them).
"""
from __future__ import annotations

import argparse
import copy
import json
import time

import numpy as np
import torch
from nnunetv2.training.loss.compound_losses import DC_and_CE_loss
from nnunetv2.training.loss.deep_supervision import DeepSupervisionWrapper
from nnunetv2.training.loss.dice import MemoryEfficientSoftDiceLoss

from nnunet_iac.network.builders import implant_search_cells
from nnunet_iac.cells.operations import ZERO
from nnunet_iac.network.implant import (architecture_parameters, cell_parameters, freeze_base,
                                       implanted_decoder, mask_operations)
from nnunet_iac.network.reference_networks import hippocampus_2d_unet, hippocampus_3d_unet
from nnunet_iac.search.adas import adas_for_cells
from nnunet_iac.search.optimizers import architecture_optimizer, cell_optimizer
from nnunet_iac.search.architecture_step import architecture_step, gradients_only_for


def make_loss():
    loss = DC_and_CE_loss({"batch_dice": True, "smooth": 1e-5, "do_bg": False, "ddp": False}, {},
                          weight_ce=1, weight_dice=1, ignore_label=None, dice_class=MemoryEfficientSoftDiceLoss)
    weights = np.array([1 / 2 ** i for i in range(3)])
    weights[-1] = 0
    return DeepSupervisionWrapper(loss, weights / weights.sum())


PATCH = {2: (56, 40), 3: (40, 56, 40)}


def make_batch(batch, device, dim=2):
    data = torch.randn(batch, 1, *PATCH[dim], device=device)
    seg = torch.randint(0, 3, (batch, 1, *PATCH[dim]), device=device).float()
    def every(step):
        return seg[(slice(None), slice(None)) + (slice(None, None, step),) * dim]
    return {"data": data, "target": [seg, every(2), every(4)]}


def operation_mask(network, kind: str, seed: int = 0) -> torch.Tensor | None:
    """The edges x operations mask ``--operations`` names (None: every operation left)."""
    if kind == "all":
        return None
    decoder = implanted_decoder(network)
    names = decoder.iac_cells[0].operation_names
    mask = torch.tensor([[name == ZERO for name in names]] * decoder.iac_architecture.alpha.shape[0])
    choices = [i for i, name in enumerate(names) if name != ZERO]
    generator = torch.Generator().manual_seed(seed)
    if kind == "one":  # the draw docs/search.md's one-per-edge rows were measured with
        drawn = [[c] for c in torch.randint(len(choices), (mask.shape[0],), generator=generator).tolist()]
    elif kind == "two":
        drawn = [torch.randperm(len(choices), generator=generator)[:2].tolist() for _ in range(mask.shape[0])]
    else:  # "none": only the zero operation stays on every edge
        drawn = [[] for _ in range(mask.shape[0])]
    for edge, picked in enumerate(drawn):
        for choice in picked:
            mask[edge, choices[choice]] = True
    return mask


def computed_edge_operations(network) -> int:
    """Operation calls per forward, counted per edge (what the grouped calls of the cells compute)."""
    return sum(len(edges.computed_edges(i)) for cell in implanted_decoder(network).iac_cells
               for edges in cell.sources for i in edges.active)


def timed(fn, iterations, device):
    for _ in range(2):
        fn()
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(iterations):
        fn()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return (time.perf_counter() - start) / iterations


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--iterations", type=int, default=10)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dim", type=int, choices=(2, 3), default=2)
    parser.add_argument("--breakdown", action="store_true",
                        help="also time the parts: base and supernet forward, alpha/beta step, cell step")
    parser.add_argument("--cell-optimizer", choices=("sgd", "adas"), default="sgd",
                        help="the cells' optimizer (nnUNet_IAC_cell_optimizer); Adas keeps one parameter group per "
                             "cell convolution, whose step may cost more than SGD's single group (issue 17)")
    parser.add_argument("--operations", choices=("all", "two", "one", "none"), default="all",
                        help="operations left on every edge: all (default), two or one (drawn with --mask-seed; "
                             "where a pruning search ends), none (the cells' frame alone)")
    parser.add_argument("--mask-seed", type=int, default=0)
    parser.add_argument("--grouped-only", action="store_true",
                        help="compute an operation left on some edges of a node on all of them, weighted 0 where "
                             "pruned (the cells before edge slicing), to measure what slicing saves")
    args = parser.parse_args()
    device = torch.device(args.device)
    torch.manual_seed(0)
    loss = make_loss()
    base = (hippocampus_2d_unet() if args.dim == 2 else hippocampus_3d_unet()).to(device)
    batch = make_batch(args.batch, device, args.dim)

    plain_opt = torch.optim.SGD(base.parameters(), 0.01, momentum=0.99, nesterov=True)

    def plain_step():
        plain_opt.zero_grad(set_to_none=True)
        loss(base(batch["data"]), batch["target"]).backward()
        plain_opt.step()

    supernet = freeze_base(implant_search_cells(copy.deepcopy(base))).to(device)
    mask = operation_mask(supernet, args.operations, args.mask_seed)
    if args.grouped_only:
        for cell in implanted_decoder(supernet).iac_cells:
            for edges in cell.sources:
                edges.sliceable = [False] * len(edges.ops)
    if mask is not None:
        mask_operations(supernet, mask)
    arch, cells = architecture_parameters(supernet), cell_parameters(supernet)
    arch_opt = architecture_optimizer(arch)
    cell_opt = adas_for_cells(supernet)[0] if args.cell_optimizer == "adas" else cell_optimizer(cells)

    def architecture_update():
        with gradients_only_for(arch, cells):
            architecture_step(supernet, loss, batch, arch_opt, device)

    def cell_update():
        with gradients_only_for(cells, arch):
            cell_opt.zero_grad(set_to_none=True)
            loss(supernet(batch["data"]), batch["target"]).backward()
            cell_opt.step()

    def search_iteration():
        architecture_update()
        cell_update()

    plain = timed(plain_step, args.iterations, device)
    search = timed(search_iteration, args.iterations, device)
    result = {"device": str(device), "dim": args.dim, "batch": args.batch, "cell_optimizer": args.cell_optimizer,
              "operations": args.operations, "grouped_only": args.grouped_only,
              "computed_edge_operations": computed_edge_operations(supernet),
              "cell_parameter_groups": len(cell_opt.param_groups), "plain_step_s": round(plain, 4),
              "search_iteration_s": round(search, 4), "ratio": round(search / plain, 3)}
    if args.breakdown:
        def forward_only(network):
            def run():
                with torch.no_grad():
                    network(batch["data"])
            return run
        parts = {"base_forward_s": forward_only(base), "supernet_forward_s": forward_only(supernet),
                 "architecture_step_s": architecture_update, "cell_step_s": cell_update}
        result.update({name: round(timed(fn, args.iterations, device), 4) for name, fn in parts.items()})
    print(json.dumps(result))


if __name__ == "__main__":
    main()
