"""Upstream drift guards for the implanted decoder (issue 15, item 5).

``ImplantedUNetDecoder.forward`` re-implements dynamic-network-architectures' ``UNetDecoder.forward``
with one change: a cell's output joins the concatenated stage input. If a new release changes the
upstream forward (the concatenation order, which seg layer runs, the deep-supervision outputs), our copy
would silently compute another function than the base was trained with. These tests fail first, naming
what to re-check.

The cells here are stand-ins that contribute nothing and record what they see, so a failure points at
the decoder's wiring, never at a cell; ``tests/network/test_implant.py`` checks that the real cells,
implanted with the default zero start, keep the base network's output.
"""
import ast
import copy
import hashlib
import importlib.metadata
import inspect
import io
import textwrap
import tokenize

import numpy as np
import pytest
import torch
from dynamic_network_architectures.building_blocks.unet_decoder import UNetDecoder
from torch import nn

from nnunet_iac.network.implant import implant_cells
from nnunet_iac.network.reference_networks import tiny_plain_unet, tiny_resenc_unet

DNA_VERSION = importlib.metadata.version("dynamic_network_architectures")
RECHECK = (f"dynamic-network-architectures' UNetDecoder.forward changed (installed version {DNA_VERSION}); "
           f"re-check ImplantedUNetDecoder.forward in nnunet_iac/network/implant.py")
NETWORKS = {"PlainConvUNet": (tiny_plain_unet, 1), "ResidualEncoderUNet": (tiny_resenc_unet, 2)}
#: non-square inputs, so that a mixed-up spatial axis shows
INPUT_SIZE = {2: (32, 24), 3: (16, 8, 24)}
#: fingerprint of UNetDecoder.forward (code tokens, without docstring and comments) as of the version
#: ImplantedUNetDecoder.forward mirrors (dynamic-network-architectures 0.4.4)
MIRRORED_FORWARD_FINGERPRINT = "9a25c9756c9196dd"


class SilentCell(nn.Module):
    """A cell that adds nothing to the stage input (residual mode) and records the shapes it is given."""

    def __init__(self):
        super().__init__()
        self.seen = []
        self.sizes_asked = []

    def zero_output(self) -> None:
        """Already silent; present because implanting with init 'zero' calls it."""

    def forward(self, skip, up, architecture=None):
        self.seen.append((tuple(skip.shape), tuple(up.shape)))
        return up.new_zeros((up.shape[0], up.shape[1] + skip.shape[1], *up.shape[2:]))

    def feature_map_size(self, spatial_size) -> np.int64:
        self.sizes_asked.append(tuple(spatial_size))
        return np.int64(0)


def base_and_silent_implant(arch: str, dim: int, deep_supervision: bool):
    """A tiny base network (eval mode) and a copy with a SilentCell in every skip connection."""
    make, channels = NETWORKS[arch]
    base = make(dim=dim, deep_supervision=deep_supervision).eval()
    implanted = implant_cells(copy.deepcopy(base), lambda stage, skip, up: SilentCell()).eval()
    return base, implanted, torch.randn(2, channels, *INPUT_SIZE[dim])


def as_list(output):
    return list(output) if isinstance(output, (list, tuple)) else [output]


@pytest.mark.parametrize("deep_supervision", [True, False], ids=["deep_supervision", "no_deep_supervision"])
@pytest.mark.parametrize("dim", [2, 3], ids=["2d", "3d"])
@pytest.mark.parametrize("arch", list(NETWORKS))
def test_silent_cells_give_exactly_the_upstream_decoder_output(arch, dim, deep_supervision):
    """Same encoder skips, same weights: our forward with silent cells is bit-identical to upstream's."""
    base, implanted, x = base_and_silent_implant(arch, dim, deep_supervision)
    with torch.no_grad():
        skips = base.encoder(x)
        upstream = UNetDecoder.forward(base.decoder, skips)
        ours = implanted.decoder(skips)
    assert type(upstream) is type(ours), f"{RECHECK}: it returns {type(upstream).__name__}, ours {type(ours).__name__}"
    upstream, ours = as_list(upstream), as_list(ours)
    assert [o.shape for o in ours] == [u.shape for u in upstream], f"{RECHECK}: output shapes differ"
    for level, (u, o) in enumerate(zip(upstream, ours)):
        assert torch.equal(u, o), f"{RECHECK}: output {level} differs by up to {(u - o).abs().max().item():.3g}"


@pytest.mark.parametrize("dim", [2, 3], ids=["2d", "3d"])
@pytest.mark.parametrize("arch", list(NETWORKS))
def test_cells_get_the_skip_and_upsampled_features_upstream_concatenates(arch, dim):
    """Stage s of the decoder merges the skip ``skips[-(s + 2)]`` with the upsampled features of equal shape."""
    base, implanted, x = base_and_silent_implant(arch, dim, deep_supervision=True)
    with torch.no_grad():
        skips = base.encoder(x)
        implanted.decoder(skips)
    for stage, cell in enumerate(implanted.decoder.iac_cells):
        expected = tuple(skips[-(stage + 2)].shape)
        assert cell.seen == [(expected, expected)], f"{RECHECK}: stage {stage} got {cell.seen}, expected {expected}"


@pytest.mark.parametrize("deep_supervision", [True, False], ids=["deep_supervision", "no_deep_supervision"])
@pytest.mark.parametrize("dim", [2, 3], ids=["2d", "3d"])
@pytest.mark.parametrize("arch", list(NETWORKS))
def test_feature_map_size_adds_cells_at_the_real_skip_sizes(arch, dim, deep_supervision):
    """nnU-Net sizes its batch from compute_conv_feature_map_size; ours re-derives the skip sizes the way
    upstream does, so with cells of size 0 it must equal upstream's, and each cell must be asked for the
    spatial size of its own skip."""
    base, implanted, x = base_and_silent_implant(arch, dim, deep_supervision)
    size = INPUT_SIZE[dim]
    assert implanted.decoder.compute_conv_feature_map_size(size) == \
        UNetDecoder.compute_conv_feature_map_size(base.decoder, size), \
        (f"dynamic-network-architectures' UNetDecoder.compute_conv_feature_map_size changed (installed version "
         f"{DNA_VERSION}); re-check ImplantedUNetDecoder.compute_conv_feature_map_size in "
         f"nnunet_iac/network/implant.py")
    with torch.no_grad():
        skips = base.encoder(x)
    for stage, cell in enumerate(implanted.decoder.iac_cells):
        expected = tuple(skips[-(stage + 2)].shape[2:])
        assert cell.sizes_asked == [expected], \
            f"the skip sizes ImplantedUNetDecoder.compute_conv_feature_map_size derives are wrong at stage {stage}"


def code_fingerprint(function) -> str:
    """A hash of a function's code tokens: blind to comments, blank lines and its docstring, so that only a
    change of what the code says (including branches our tiny networks never take) changes it."""
    source = textwrap.dedent(inspect.getsource(function))
    definition = ast.parse(source).body[0]
    docstring = definition.body[0] if ast.get_docstring(definition) is not None else None
    docstring_lines = range(docstring.lineno, docstring.end_lineno + 1) if docstring else range(0)
    skipped = (tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE, tokenize.ENDMARKER)
    words = []
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type in skipped or (token.type == tokenize.STRING and token.start[0] in docstring_lines):
            continue
        structural = token.type in (tokenize.INDENT, tokenize.DEDENT)
        words.append(tokenize.tok_name[token.type] if structural else token.string)
    return hashlib.sha256(" ".join(words).encode()).hexdigest()[:16]


def test_upstream_forward_source_is_the_one_we_mirrored():
    """The behaviour tests only run the options our tiny networks use; a new branch in UNetDecoder.forward (an
    option plans could switch on) would pass them. Comments and docstring edits do not trip this guard."""
    fingerprint = code_fingerprint(UNetDecoder.forward)
    assert fingerprint == MIRRORED_FORWARD_FINGERPRINT, (
        f"{RECHECK}. Its code fingerprint is {fingerprint}, the mirrored one {MIRRORED_FORWARD_FINGERPRINT}; "
        f"once ImplantedUNetDecoder.forward matches it again, set MIRRORED_FORWARD_FINGERPRINT in "
        f"tests/network/test_drift_guards.py to {fingerprint}.")
