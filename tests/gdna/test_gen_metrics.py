"""COV, MMD, 1-NNA and the Chamfer distance: known answers and the slow references as oracles."""

import pytest
import torch

from neuralbody.gdna.gen_metrics import (chamfer_distance, chamfer_reference, coverage_and_mmd, distance_matrix,
                                         generative_metrics, one_nna, one_nna_reference)


def _cloud(centre, count=5, seed=0):
    generator = torch.Generator().manual_seed(seed)
    return torch.tensor(centre, dtype=torch.float64) + 0.01 * torch.randn(count, 3, generator=generator, dtype=torch.float64)


def test_chamfer_matches_reference_and_known_answer():
    a, b = _cloud([0, 0, 0], 7, 1), _cloud([0.1, 0, 0], 5, 2)
    assert float(chamfer_distance(a, b)) == pytest.approx(chamfer_reference(a, b), rel=1e-12)
    one, two = torch.zeros(1, 3), torch.tensor([[0.0, 0.0, 2.0]])
    assert float(chamfer_distance(one, two)) == pytest.approx(8.0)  # 4 each way
    assert float(chamfer_distance(a, a)) == 0.0


def test_one_nna_known_answers():
    near = [_cloud([0, 0, 0], seed=s) for s in range(4)]
    far = [_cloud([50, 0, 0], seed=10 + s) for s in range(4)]
    assert generative_metrics(near, far).one_nna == 1.0  # disjoint, far apart: every shape is told apart
    assert generative_metrics(near, near).one_nna == 0.0  # exact copies: each nearest shape is its twin
    # 1-D: G = {0, 1}, R = {1.6, 10}: 0 -> 1 (right), 1 -> 1.6 (wrong), 1.6 -> 1 (wrong), 10 -> 1.6 (right)
    points = lambda x: torch.tensor([[x, 0.0, 0.0]], dtype=torch.float64)  # noqa: E731
    assert generative_metrics([points(0), points(1)], [points(1.6), points(10)]).one_nna == 0.5


def test_one_nna_matches_reference_on_random_sets():
    generator = torch.Generator().manual_seed(3)
    gen = [torch.randn(6, 3, generator=generator, dtype=torch.float64) for _ in range(5)]
    ref = [0.5 + torch.randn(6, 3, generator=generator, dtype=torch.float64) for _ in range(4)]
    gg, gr, rr = distance_matrix(gen, gen), distance_matrix(gen, ref), distance_matrix(ref, ref)
    assert one_nna(gg, gr, rr) == pytest.approx(one_nna_reference(gen, ref))


def test_same_distribution_gives_about_half():
    generator = torch.Generator().manual_seed(5)
    shapes = [torch.randn(1, 3, generator=generator, dtype=torch.float64) for _ in range(100)]
    assert abs(generative_metrics(shapes[:50], shapes[50:]).one_nna - 0.5) < 0.15  # ~3 standard deviations


def test_coverage_and_mmd_known_answers():
    gen_ref = torch.tensor([[1.0, 5.0, 9.0], [2.0, 0.5, 9.0]], dtype=torch.float64)
    coverage, mmd = coverage_and_mmd(gen_ref)
    assert coverage == pytest.approx(2 / 3)  # references 0 and 1 are matched, 2 is not
    assert mmd == pytest.approx((1.0 + 0.5 + 9.0) / 3)
    with pytest.raises(ValueError):
        coverage_and_mmd(torch.zeros(0, 3))
