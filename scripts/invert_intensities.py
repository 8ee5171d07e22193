"""Write every PNG image of a folder with its intensities inverted within its own range: ``min + max - x``.

Why: DSB2018 brightfield shows dark nuclei on a bright background, fluorescence bright nuclei on a dark one.
nnU-Net z-scores each image, so an image inverted this way reaches the network as the exact negative of the
original's normalized input. Predicting the target's test images inverted with the untouched source base asks
how much of the domain gap is that sign alone, a change the first encoder stage can make (its convolution's
weights negated) but skip-connection cells cannot (the encoder's deeper stages and the bottleneck path still see
the uninverted input). docs/adaptation.md reports it.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from skimage import io


def inverted(image: np.ndarray) -> np.ndarray:
    """``min + max - image`` in the image's own dtype (an 8-bit image stays within its values, no wrap-around)."""
    wide = image.astype(np.int64) if np.issubdtype(image.dtype, np.integer) else image.astype(np.float64)
    return (wide.min() + wide.max() - wide).astype(image.dtype)


def invert_folder(source: Path, destination: Path) -> list[Path]:
    images = sorted(Path(source).glob("*.png"))
    if not images:
        raise SystemExit(f"{source}: no .png images; this inverts nnU-Net's 2d natural-image inputs "
                         f"(e.g. imagesTs of a DSB2018 domain dataset)")
    destination = Path(destination)
    if destination.resolve() == Path(source).resolve():
        raise SystemExit(f"{destination}: the destination is the source folder; give another folder, the "
                         f"originals are never overwritten")
    destination.mkdir(parents=True, exist_ok=True)
    written = []
    for path in images:
        io.imsave(destination / path.name, inverted(io.imread(path)), check_contrast=False)
        written.append(destination / path.name)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", type=Path, help="folder of nnU-Net input images (*_0000.png)")
    parser.add_argument("destination", type=Path, help="folder for the inverted copies (created)")
    args = parser.parse_args(argv)
    written = invert_folder(args.source, args.destination)
    print(f"{len(written)} images inverted into {args.destination}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
