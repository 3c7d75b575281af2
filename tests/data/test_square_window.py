"""A square window of an image: its pixels and its intrinsics."""

import numpy as np
import pytest

from neuralbody.data.square_window import SquareWindow, window_intrinsics, window_pixels


def test_window_pixels_copy_the_image_and_are_black_outside_it():
    image = np.arange(5 * 6 * 2, dtype=np.float32).reshape(5, 6, 2)
    window = window_pixels(image, SquareWindow(x0=-1, y0=2, side=4))
    assert window.shape == (4, 4, 2) and window.dtype == np.float32
    np.testing.assert_array_equal(window[:3, 1:], image[2:5, 0:3])  # rows 2-4, columns 0-2 of the image
    assert not window[:, 0].any() and not window[3].any()  # column -1 and row 5 lie outside
    with pytest.raises(ValueError, match="H, W, C"):
        window_pixels(image[..., 0], SquareWindow(0, 0, 2))


def test_window_intrinsics_map_pixels_as_the_crop_does():
    K = np.array([[800.0, 0.0, 310.0], [0.0, 790.0, 245.0], [0.0, 0.0, 1.0]])
    window, size = SquareWindow(x0=100, y0=60, side=200), 128
    points = np.array([[0.1, -0.2, 2.0], [-0.3, 0.05, 3.5]])
    def project(matrix):
        uv = (matrix @ points.T).T
        return uv[:, :2] / uv[:, 2:]
    scale = size / window.side
    expected = (project(K) - [window.x0, window.y0] + 0.5) * scale - 0.5
    np.testing.assert_allclose(project(window_intrinsics(K, window, size)), expected, atol=1e-9)
    assert K[0, 2] == 310.0  # the input is left alone
