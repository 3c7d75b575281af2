"""Derive and store where MediaPipe's face landmarks sit on Anny's head (neuralbody/head/landmark_table.py).

    python docs/make_head_landmark_table.py [--out neuralbody/head/landmark_table.py]

Needs MediaPipe 0.10.14 (``pip install 'neuralbody[detect]'``). Renders Anny's neutral head
(the skin of seed 0) from nine cameras at azimuths {-0.35, 0, 0.35} x elevations {-0.2, 0, 0.2}
rad, 512 x 512, finds MediaPipe's 478 landmarks in each, and runs
:func:`neuralbody.head.landmark_map.derive_landmark_map` (triangulate, snap to the surface,
weight). The method is in that module's docstring.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import numpy as np

from neuralbody.head.appearance import vertex_albedo
from neuralbody.head.camera_path import orbit_camera
from neuralbody.head.face_mesh import FaceMeshDetector
from neuralbody.head.landmark_map import derive_landmark_map
from neuralbody.head.mesh_render import render_mesh
from neuralbody.head.rig import build_head_rig
from neuralbody.io.atomic import atomic_write_text

log = logging.getLogger("make_head_landmark_table")
ANGLES = [(a, e) for a in (-0.35, 0.0, 0.35) for e in (-0.2, 0.0, 0.2)]
RESOLUTION = 512

HEADER = '''"""MediaPipe's 478 face landmarks on Anny's head: written by docs/make_head_landmark_table.py.

Rows ``(face_id, b0, b1, weight)``: the landmark is ``b0 a + b1 b + (1 - b0 - b1) c`` of the rig
triangle ``faces[face_id] = (a, b, c)``; ``weight`` is its weight in the fit. Derivation and
meaning: :mod:`neuralbody.head.landmark_map`. Generated data (do not edit by hand).
"""

# fmt: off
TABLE = (
'''


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / "neuralbody/head/landmark_table.py")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    rig = build_head_rig()
    albedo = vertex_albedo(rig, 0)
    cameras = [orbit_camera(a, e, RESOLUTION, name=f"v{i}") for i, (a, e) in enumerate(ANGLES)]
    detections = []
    with FaceMeshDetector(video=False) as detector:
        for camera in cameras:
            view = render_mesh(camera, rig.rest_vertices, rig.faces, albedo)
            found = detector.detect(np.round(view.image * 255).astype(np.uint8))
            detections.append(np.concatenate([found.landmarks, np.full((len(found.landmarks), 1), float(found.found))], 1))
            log.info("view %s: face %s", camera.name, "found" if found.found else "NOT found")
    landmarks, info = derive_landmark_map(rig.rest_vertices, rig.faces, cameras, np.stack(detections))
    log.info("snapping distance mm: median %.2f, 90%% %.2f, max %.2f; reprojection px: median %.2f, 90%% %.2f; "
             "weight: median %.2f, min %.2f", *(np.percentile(info["snap_m"] * 1000, [50, 90, 100])),
             *(np.percentile(info["residual_px"], [50, 90])), float(landmarks.weights.median()),
             float(landmarks.weights.min()))
    rows = [f"    ({int(f)}, {b[0]:.4f}, {b[1]:.4f}, {w:.3f}),"
            for f, b, w in zip(landmarks.face_ids.tolist(), landmarks.barycentrics.tolist(), landmarks.weights.tolist())]
    atomic_write_text(args.out, HEADER + "\n".join(rows) + "\n)\n# fmt: on\n")
    log.info("wrote %d landmarks to %s", len(rows), args.out)


if __name__ == "__main__":
    main()
