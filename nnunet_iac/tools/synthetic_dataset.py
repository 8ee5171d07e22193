"""A small synthetic 3D dataset in nnU-Net raw format, for tests and the demo (no downloads).

Each case is a noisy volume with two ellipsoids of different brightness (labels 1 and 2), placed and
sized at random. It is made up, not medical data; it only exercises the pipeline end to end.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import SimpleITK as sitk


def _ellipsoid(shape, center, radii):
    grids = np.meshgrid(*[np.arange(s) for s in shape], indexing="ij")
    return sum(((g - c) / r) ** 2 for g, c, r in zip(grids, center, radii)) <= 1.0


def make_case(rng: np.random.RandomState, shape) -> tuple[np.ndarray, np.ndarray]:
    label = np.zeros(shape, dtype=np.uint8)
    for value in (1, 2):
        radii = rng.uniform(0.12, 0.22, size=3) * np.array(shape)
        center = [rng.uniform(r + 1, s - r - 1) for r, s in zip(radii, shape)]
        label[_ellipsoid(shape, center, radii)] = value
    image = rng.normal(0.0, 0.35, size=shape).astype(np.float32)
    image += np.where(label == 1, 1.0, 0.0) + np.where(label == 2, 2.0, 0.0)
    return image, label


def _write(array: np.ndarray, path: Path) -> None:
    img = sitk.GetImageFromArray(array)
    img.SetSpacing((1.0, 1.0, 1.0))
    sitk.WriteImage(img, str(path))


def make_synthetic_dataset(raw_dir: str | Path, dataset_id: int = 990, name: str = "IACSynthetic",
                           num_cases: int = 12, shape=(20, 24, 20), seed: int = 0,
                           num_test_cases: int = 0) -> Path:
    """Write ``Dataset{id}_{name}`` under ``raw_dir``; returns its folder. Test cases go to imagesTs/labelsTs."""
    folder = Path(raw_dir) / f"Dataset{dataset_id:03d}_{name}"
    for sub in ("imagesTr", "labelsTr", "imagesTs", "labelsTs"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    rng = np.random.RandomState(seed)
    for i in range(num_cases + num_test_cases):
        image, label = make_case(rng, shape)
        part = "Tr" if i < num_cases else "Ts"
        _write(image, folder / f"images{part}" / f"case_{i:03d}_0000.nii.gz")
        _write(label, folder / f"labels{part}" / f"case_{i:03d}.nii.gz")
    dataset = {"channel_names": {"0": "synthetic"}, "labels": {"background": 0, "dim": 1, "bright": 2},
               "numTraining": num_cases, "file_ending": ".nii.gz",
               "description": "Synthetic ellipsoids made by nnunet-iac for tests and the demo; not medical data."}
    (folder / "dataset.json").write_text(json.dumps(dataset, indent=2))
    return folder
