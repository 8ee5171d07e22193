"""Forwards ``ImplantedUNet`` from the path model folders retrained before the subpackages (issue 15) name
in their plans.json: nnU-Net's predictor imports ``network_class_name`` as written, so deleting this module
would make those folders unpredictable. New plans name ``nnunet_iac.network.implanted_network``."""
from nnunet_iac.network.implanted_network import ImplantedUNet

__all__ = ["ImplantedUNet"]
