"""A network class nnU-Net can rebuild from plans alone: a base U-Net with discrete cells implanted.

nnU-Net's predictor rebuilds the network from the model folder's plans.json (``network_class_name`` +
``arch_kwargs``) and then loads every fold's weights strictly. ``ImplantedUNet`` takes the base
architecture and the genotype as its arch kwargs, so a retrained IAC model folder predicts with plain
``nnUNetv2_predict``. It adopts the base's ``encoder`` and ``decoder`` (so state_dict keys are those of
the base plus ``decoder.iac_cells``) and has no ``initialize``: nnU-Net would otherwise re-initialize
the cells and undo the zeroed projection of the residual mode. ``iac_cell_options`` written before
``init`` existed mean ``init=zero`` (``CellOptions``' default), which is what those models were trained with.
"""
from __future__ import annotations

import copy
import pydoc
from dataclasses import asdict
from typing import Any

from torch import nn

from nnunet_iac.network.builders import CellOptions, implant_discrete_cells
from nnunet_iac.cells.genotype import Genotype, GenotypeError

CLASS_PATH = "nnunet_iac.network.implanted_network.ImplantedUNet"
# where ImplantedUNet lived before the subpackages (issue 15): model folders retrained then name it in their
# plans.json, and nnU-Net's predictor imports whatever they name (nnunet_iac/implanted_network.py forwards it)
LEGACY_CLASS_PATHS = ("nnunet_iac.implanted_network.ImplantedUNet",)


class ImplantedUNet(nn.Module):
    """Arch kwargs are the base's own (nnU-Net reads strides, kernel sizes... from them) plus ``iac_*``."""

    def __init__(self, input_channels: int, num_classes: int, iac_base_network_class_name: str = "",
                 iac_genotype: dict | None = None, iac_cell_options: dict | None = None,
                 deep_supervision: bool = False, **base_kwargs):
        super().__init__()
        missing = [name for name, value in zip(IAC_KEYS, (iac_base_network_class_name, iac_genotype,
                                                          iac_cell_options)) if not value]
        if missing:
            raise GenotypeError(
                f"The plans describe an implanted network ({CLASS_PATH}) but its arch_kwargs lack "
                f"{', '.join(missing)}: the genotype is missing. The model folder's plans.json was edited or not "
                f"written by nnUNetTrainerIACRetrain; retrain with nnUNetTrainerIACRetrain (it writes them) or restore "
                f"that plans.json.")
        base_class = pydoc.locate(iac_base_network_class_name)
        if base_class is None:
            raise ImportError(f"Base network class {iac_base_network_class_name} (from plans.json) cannot be "
                              f"imported.")
        base = base_class(input_channels=input_channels, num_classes=num_classes,
                          deep_supervision=deep_supervision, **base_kwargs)
        if hasattr(base, "initialize"):
            base.apply(base.initialize)
        implant_discrete_cells(base, Genotype.from_dict(iac_genotype, "plans.json genotype"),
                               CellOptions.from_dict(iac_cell_options))
        self.encoder = base.encoder
        self.decoder = base.decoder

    def forward(self, x):
        return self.decoder(self.encoder(x))

    def compute_conv_feature_map_size(self, input_size):
        return self.encoder.compute_conv_feature_map_size(input_size) + \
            self.decoder.compute_conv_feature_map_size(input_size)


IAC_KEYS = ("iac_base_network_class_name", "iac_genotype", "iac_cell_options")


def is_implanted(architecture: dict) -> bool:
    return architecture.get("network_class_name") in (CLASS_PATH, *LEGACY_CLASS_PATHS)


def implanted_architecture(base_architecture: dict, genotype: Genotype, options: CellOptions) -> dict:
    """The plans' ``architecture`` entry that rebuilds ``base_architecture`` with ``genotype`` cells."""
    return {
        "network_class_name": CLASS_PATH,
        "arch_kwargs": {
            **copy.deepcopy(base_architecture["arch_kwargs"]),
            "iac_base_network_class_name": base_architecture["network_class_name"],
            "iac_genotype": genotype.to_dict(),
            "iac_cell_options": asdict(options),
        },
        "_kw_requires_import": list(base_architecture.get("_kw_requires_import", [])),
    }


def base_architecture_of(architecture: dict) -> dict[str, Any]:
    """The base architecture inside an implanted one (or the architecture itself if not implanted)."""
    if not is_implanted(architecture):
        return architecture
    kwargs = {k: v for k, v in architecture["arch_kwargs"].items() if k not in IAC_KEYS}
    return {"network_class_name": architecture["arch_kwargs"]["iac_base_network_class_name"],
            "arch_kwargs": kwargs, "_kw_requires_import": architecture.get("_kw_requires_import", [])}


def cells_signature(architecture: dict) -> tuple:
    """What must agree between folds that share one model folder: genotype (branches included) and cell options
    (defaults filled in, so plans written before an option existed compare equal to its default)."""
    kwargs = architecture["arch_kwargs"]
    genotype = Genotype.from_dict(kwargs["iac_genotype"])
    options = asdict(CellOptions.from_dict(kwargs["iac_cell_options"]))
    return genotype.nodes, genotype.concat, genotype.branches, tuple(sorted(options.items()))
