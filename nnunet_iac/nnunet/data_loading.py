"""An extra nnU-Net training loader (with nnU-Net's own augmentation) for a second set of cases.

nnU-Net's trainer builds one augmented loader (training) and one plain loader (validation). The search
needs a second augmented loader for val_search, built here from the trainer's own transforms, sampler
and worker settings (``nnUNet_n_proc_DA``, 0 included).
"""
from __future__ import annotations

from batchgenerators.dataloading.nondet_multi_threaded_augmenter import NonDetMultiThreadedAugmenter
from batchgenerators.dataloading.single_threaded_augmenter import SingleThreadedAugmenter
from nnunetv2.training.dataloading.data_loader import nnUNetDataLoader
from nnunetv2.utilities.default_n_proc_DA import get_allowed_n_proc_DA


def make_training_loader(trainer, dataset):
    rotation, dummy_2d, initial_patch_size, mirror_axes = \
        trainer.configure_rotation_dummyDA_mirroring_and_inital_patch_size()
    labels = trainer.label_manager
    patch_size = trainer.configuration_manager.patch_size
    transforms = trainer.get_training_transforms(
        patch_size, rotation, trainer._get_deep_supervision_scales(), mirror_axes, dummy_2d,
        use_mask_for_norm=trainer.configuration_manager.use_mask_for_norm, is_cascaded=trainer.is_cascaded,
        foreground_labels=labels.foreground_labels,
        regions=labels.foreground_regions if labels.has_regions else None, ignore_label=labels.ignore_label)
    loader = nnUNetDataLoader(dataset, trainer.batch_size, initial_patch_size, patch_size, labels,
                              oversample_foreground_percent=trainer.oversample_foreground_percent,
                              sampling_probabilities=None, pad_sides=None, transforms=transforms,
                              probabilistic_oversampling=trainer.probabilistic_oversampling)
    processes = get_allowed_n_proc_DA()
    if processes == 0:
        return SingleThreadedAugmenter(loader, None)
    return NonDetMultiThreadedAugmenter(loader, None, processes, max(6, processes // 2), seeds=None,
                                        pin_memory=trainer.device.type == "cuda", wait_time=0.002)


def shut_down(loader) -> None:
    """Stop a loader's worker processes (a no-op for the single-threaded one)."""
    finish = getattr(loader, "_finish", None)
    if callable(finish):
        finish()
