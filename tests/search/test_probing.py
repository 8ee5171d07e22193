"""Probing (nnunet_iac/search/probing.py, issue 17): EVBMF keeps the signal of matrices with known rank and drops
noise; the stable rank and condition follow."""
import math

import numpy as np
import torch

from nnunet_iac.search.probing import evbmf_singular_values, probe_convolution, probe_matrix


def _low_rank(rank, shape=(40, 120), noise=0.01, seed=0, strengths=None):
    rng = np.random.default_rng(seed)
    strengths = strengths or [10.0 - i for i in range(rank)]
    u = np.linalg.qr(rng.standard_normal((shape[0], rank)))[0]
    v = np.linalg.qr(rng.standard_normal((shape[1], rank)))[0]
    return (u * strengths) @ v.T + noise * rng.standard_normal(shape)


def test_evbmf_keeps_the_components_of_a_low_rank_matrix_and_drops_the_noise():
    for rank in (1, 3, 6):
        values = evbmf_singular_values(_low_rank(rank))
        assert len(values) == rank
        assert np.allclose(values, [10.0 - i for i in range(rank)], rtol=0.05)


def test_pure_noise_keeps_nothing_and_transposing_changes_nothing():
    noise = np.random.default_rng(1).standard_normal((40, 120))
    assert len(evbmf_singular_values(noise)) == 0
    assert probe_matrix(noise).stable_rank == 0.0 and math.isnan(probe_matrix(noise).condition)
    matrix = _low_rank(3)
    assert np.allclose(evbmf_singular_values(matrix), evbmf_singular_values(matrix.T))


def test_stable_rank_and_condition_of_known_spectra():
    equal = probe_matrix(_low_rank(4, strengths=[5.0] * 4, noise=0.001))
    assert equal.kept == 4 and abs(equal.stable_rank - 4 / 40) < 0.01  # 4 equal values over N = 40
    assert abs(equal.condition - 1.0) < 0.05
    spread = probe_matrix(_low_rank(2, strengths=[8.0, 2.0], noise=0.001))
    assert abs(spread.condition - 4.0) < 0.2 and abs(spread.stable_rank - (8 + 2) / (40 * 8)) < 0.005


def test_a_trained_looking_convolution_probes_above_a_random_one():
    torch.manual_seed(0)
    random = torch.randn(16, 8, 3, 3) * 0.1
    structured = torch.from_numpy(_low_rank(4, shape=(16, 72), noise=0.01)).float().reshape(16, 8, 3, 3)
    assert probe_convolution(structured).stable_rank > probe_convolution(random).stable_rank
    assert probe_convolution(torch.zeros(4, 4, 3, 3)).kept == 0


def test_a_depthwise_weight_is_probed_on_its_output_unfolding_alone_and_a_single_channel_is_all_noise():
    rng = np.random.default_rng(2)
    structured = _low_rank(2, shape=(16, 9), noise=0.001)
    depthwise = torch.as_tensor(structured.reshape(16, 1, 3, 3))
    probe, expected = probe_convolution(depthwise), probe_matrix(structured)
    # the one-row input unfolding (1 x 144) is not averaged in (float32 in the probe, hence approx)
    assert probe.kept == expected.kept == 2
    assert abs(probe.stable_rank - expected.stable_rank) < 1e-5 and abs(probe.condition - expected.condition) < 1e-3
    single = probe_convolution(torch.as_tensor(rng.standard_normal((1, 1, 1, 1))))
    assert single.stable_rank == 0.0 and single.kept == 0 and math.isnan(single.condition)
