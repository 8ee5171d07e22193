"""A quick end-to-end check of the cell library on the Hippocampus 2d network, with no data needed.

It implants search cells into a (randomly initialized) Hippocampus 2d U-Net, checks that the residual
implant leaves the output unchanged, runs a few search steps on random data and checks the frozen base
did not move, derives a genotype, builds the discrete cells and prints what they add.
"""
from __future__ import annotations

import copy
import logging

import torch

from nnunet_iac.network.builders import CellOptions, implant_discrete_cells, implant_search_cells
from nnunet_iac.cells.genotype import Genotype, derive_genotype
from nnunet_iac.network.implant import architecture_parameters, cell_parameters, freeze_base
from nnunet_iac.network.parameter_report import parameter_report
from nnunet_iac.network.reference_networks import EXAMPLE_GENOTYPE_DICT, hippocampus_2d_unet

log = logging.getLogger("nnunet_iac.tools.selfcheck")


def _max_difference(a, b) -> float:
    return max(float((x - y).abs().max()) for x, y in zip(a, b))


def run_selfcheck(steps: int = 3, seed: int = 0) -> dict:
    torch.manual_seed(seed)
    base = hippocampus_2d_unet().eval()
    x = torch.randn(4, 1, 56, 40)
    target = torch.randint(0, 3, (4, 56, 40))
    with torch.no_grad():
        reference = base(x)
    base_state = {k: v.clone() for k, v in base.state_dict().items()}

    supernet = freeze_base(implant_search_cells(copy.deepcopy(base))).eval()
    with torch.no_grad():
        preserved = _max_difference(reference, supernet(x))
    log.info("residual implant, before training: max |implanted - base| = %.3g", preserved)

    arch_opt = torch.optim.Adam(architecture_parameters(supernet), lr=1e-3)
    cell_opt = torch.optim.SGD(cell_parameters(supernet), lr=0.01)
    supernet.train()
    for step in range(steps):
        for opt in (arch_opt, cell_opt):
            opt.zero_grad()
            loss = torch.nn.functional.cross_entropy(supernet(x)[0], target)
            loss.backward()
            opt.step()
        log.info("search step %d: loss %.4f", step, loss.item())
    moved = {k for k, v in supernet.state_dict().items() if k in base_state and not torch.equal(v, base_state[k])}
    genotype = derive_genotype(*supernet.decoder.iac_architecture(), supernet.decoder.iac_architecture.topology,
                               supernet.decoder.iac_cells[0].operation_names)
    discrete = implant_discrete_cells(copy.deepcopy(base), genotype).eval()
    with torch.no_grad():
        discrete_preserved = _max_difference(reference, discrete(x))
    report = parameter_report(base, Genotype.from_dict(EXAMPLE_GENOTYPE_DICT), CellOptions())
    return {"preserved": preserved, "discrete_preserved": discrete_preserved, "base_keys_changed": sorted(moved),
            "genotype": genotype, "report": report}


def main(steps: int = 3) -> int:
    result = run_selfcheck(steps)
    ok = result["preserved"] <= 1e-5 and result["discrete_preserved"] <= 1e-5 and not result["base_keys_changed"]
    print("nnunet-iac self-check on the Hippocampus 2d U-Net (PlainConvUNet, 4 stages 32-256, random weights)")
    print(f"  search supernet output == base output before training: max diff {result['preserved']:.3g}")
    print(f"  discrete implant output == base output before training: max diff {result['discrete_preserved']:.3g}")
    print(f"  base tensors changed by {steps} search steps: {len(result['base_keys_changed'])}")
    print("  genotype after the steps:")
    print("    " + result["genotype"].describe().replace("\n", "\n    "))
    print("\nParameters added with the example genotype (every non-zero op):")
    print(result["report"].markdown())
    print("\nself-check " + ("passed" if ok else "FAILED"))
    return 0 if ok else 1
