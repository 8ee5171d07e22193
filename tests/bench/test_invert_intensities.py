"""scripts/invert_intensities.py: the images a diagnostic of docs/adaptation.md predicts (the target's test
images with their intensities inverted), written beside the originals, never over them."""
from pathlib import Path

import numpy as np
import pytest
from skimage import io

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def invert(monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT / "scripts"))
    import invert_intensities
    return invert_intensities


def test_an_image_is_inverted_within_its_own_range_in_its_own_dtype(invert):
    image = np.array([[51, 60], [184, 100]], dtype=np.uint8)
    out = invert.inverted(image)
    assert out.dtype == np.uint8 and out.tolist() == [[184, 175], [51, 135]]
    assert np.array_equal(invert.inverted(out), image)


def test_a_z_scored_inverted_image_is_the_negative_of_the_z_scored_original(invert):
    """What makes the diagnostic a pure sign change for nnU-Net, which z-scores each image."""
    image = np.random.default_rng(0).integers(30, 220, (16, 16)).astype(np.uint8)

    def z(a):
        a = a.astype(np.float64)
        return (a - a.mean()) / a.std()

    assert np.allclose(z(invert.inverted(image)), -z(image))


def test_a_folder_is_written_inverted_and_the_originals_are_kept(invert, tmp_path):
    source = tmp_path / "imagesTs"
    source.mkdir()
    image = np.random.default_rng(1).integers(0, 256, (8, 12)).astype(np.uint8)
    io.imsave(source / "case_0000.png", image, check_contrast=False)
    assert invert.main([str(source), str(tmp_path / "inverted")]) == 0
    assert np.array_equal(io.imread(tmp_path / "inverted" / "case_0000.png"), invert.inverted(image))
    assert np.array_equal(io.imread(source / "case_0000.png"), image)


@pytest.mark.parametrize("same", [True, False])
def test_a_folder_without_images_or_the_source_as_destination_is_refused(invert, tmp_path, same):
    source = tmp_path / "images"
    source.mkdir()
    if same:
        io.imsave(source / "case_0000.png", np.zeros((4, 4), np.uint8), check_contrast=False)
    with pytest.raises(SystemExit, match="destination is the source" if same else "no .png images"):
        invert.invert_folder(source, source if same else tmp_path / "out")
