"""What the network a model folder's ``plans.json`` rebuilds holds, read the way nnUNetv2_predict builds it."""
from __future__ import annotations

import json
from pathlib import Path

from torch import nn
from nnunetv2.utilities.get_network_from_plans import get_network_from_plans
from nnunetv2.utilities.plans_handling.plans_handler import PlansManager

from nnunet_iac.network.implant import cell_parameters, count_parameters


def model_folder_network(model_folder: Path, configuration: str) -> nn.Module:
    """The network a model folder's plans.json rebuilds (cells included where its plans implant them)."""
    plans = PlansManager(str(Path(model_folder) / "plans.json"))
    config = plans.get_configuration(configuration)
    dataset_json = json.loads((Path(model_folder) / "dataset.json").read_text())
    return get_network_from_plans(config.network_arch_class_name, config.network_arch_init_kwargs,
                                  config.network_arch_init_kwargs_req_import, len(dataset_json["channel_names"]),
                                  plans.get_label_manager(dataset_json).num_segmentation_heads,
                                  allow_init=False, deep_supervision=False)


def model_folder_parameters(model_folder: Path, configuration: str) -> tuple[int, int]:
    """(base parameters, parameters added by cells) of the network a model folder's plans.json rebuilds."""
    network = model_folder_network(model_folder, configuration)
    added = count_parameters(cell_parameters(network))
    return count_parameters(network.parameters()) - added, added
