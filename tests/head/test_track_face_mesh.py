"""MediaPipe's face mesh on a rendered Anny head lands where the stored landmark map says (needs the detect extra)."""

import numpy as np
import pytest

pytest.importorskip("mediapipe")

from neuralbody.data.cameras import project_points  # noqa: E402
from neuralbody.head.appearance import vertex_albedo  # noqa: E402
from neuralbody.head.camera_path import orbit_camera  # noqa: E402
from neuralbody.head.face_mesh import FaceMeshDetector  # noqa: E402
from neuralbody.head.landmark_map import default_landmark_map, landmark_points  # noqa: E402
from neuralbody.head.mesh_render import render_mesh  # noqa: E402
from neuralbody.head.rig import build_head_rig  # noqa: E402


@pytest.mark.anny
def test_face_mesh_finds_anny_where_the_map_puts_the_landmarks():
    rig = build_head_rig()
    camera = orbit_camera(0.2, 0.05, 256)
    view = render_mesh(camera, rig.rest_vertices, rig.faces, vertex_albedo(rig, 3), supersample=1)
    with FaceMeshDetector(video=False) as detector:
        found = detector.detect(np.round(view.image * 255).astype(np.uint8))
        empty = detector.detect(np.zeros((64, 64, 3), np.uint8))
    assert found.found and not empty.found
    points = landmark_points(rig.rest_vertices.double(), rig.faces, default_landmark_map())
    expected, _ = project_points(camera, points.numpy())
    distance = np.linalg.norm(found.landmarks - expected, axis=1)
    assert np.median(distance) < 3.0  # pixels of 256: the map's derivation residual is ~1.5 px at this size
