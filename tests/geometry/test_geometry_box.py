"""neuralbody.geometry.box: the padded body box, for arrays and tensors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from neuralbody.geometry.box import BODY_BOX_PADDING, body_box


def test_body_box_known_answer_numpy_and_torch():
    vertices = np.array([[0.0, -1.0, 0.5], [1.0, 2.0, 1.5], [0.5, 0.0, 0.0]])
    box_min, box_max = body_box(vertices)
    assert BODY_BOX_PADDING == 0.05
    np.testing.assert_allclose(box_min, [-0.05, -1.05, -0.05], atol=1e-15)
    np.testing.assert_allclose(box_max, [1.05, 2.05, 1.55], atol=1e-15)
    t_min, t_max = body_box(torch.tensor(vertices, dtype=torch.float32), 0.1)
    assert t_min.dtype == torch.float32 and isinstance(t_max, torch.Tensor)
    torch.testing.assert_close(t_min, torch.tensor([-0.1, -1.1, -0.1]))
    torch.testing.assert_close(t_max, torch.tensor([1.1, 2.1, 1.6]))


def test_body_box_pads_only_the_asked_axes_and_keeps_float64():
    vertices = np.random.default_rng(0).normal(size=(50, 3))
    box_min, box_max = body_box(vertices, 0.2, axes=(2,))
    assert box_min.dtype == np.float64
    np.testing.assert_array_equal(box_min[:2], vertices.min(axis=0)[:2])
    np.testing.assert_array_equal(box_max[:2], vertices.max(axis=0)[:2])
    np.testing.assert_allclose(box_max[2] - vertices[:, 2].max(), 0.2, atol=1e-15)
    # the same numbers as padding by hand in float64 (what the trainer and evaluator did before)
    np.testing.assert_array_equal(body_box(vertices)[0], vertices.min(axis=0) - 0.05)
    np.testing.assert_array_equal(body_box(vertices)[1], vertices.max(axis=0) + 0.05)


def test_body_box_guards():
    with pytest.raises(ValueError, match="body_box"):
        body_box(np.zeros((0, 3)))
    with pytest.raises(ValueError, match="body_box"):
        body_box(torch.zeros(4, 2))
