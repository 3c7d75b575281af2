"""Figure of reconstructed meshes: the input views (top row) and each mesh seen from four sides (a row each).

    python docs/make_recon_figure.py --mesh /tmp/p2s/frame40.ply --capture /tmp/p2s --frame 40 \
        --views 0,1,2,3 --out docs/recon_pose2sim.png
    python docs/make_recon_figure.py --mesh gt.ply --mesh mvms.ply --mesh pifu.ply --out compare.png
    python docs/make_recon_figure.py --corpus corpus --out docs/recon_corpus.png   # people of a corpus

The mesh (world metres, z up) is ray cast with Warp from four cameras on a ring around its
vertical axis (azimuths 0, 90, 180, 270 degrees from the first input camera's), shaded with the
synthetic captures' Lambert lights; input views are cropped around the mesh's projected box.
"""

from __future__ import annotations

import argparse
import logging
import math
from pathlib import Path

import numpy as np
import torch
from PIL import Image


def ring_camera(centre: np.ndarray, azimuth: float, distance: float, size: int, focal: float):
    from neuralbody.data.cameras import Camera
    from neuralbody.geometry.rotations import look_at_rotation

    eye = centre + np.array([distance * math.cos(azimuth), distance * math.sin(azimuth), 0.3])
    R = look_at_rotation(eye, centre)
    K = np.array([[focal, 0.0, (size - 1) / 2], [0.0, focal, (size - 1) / 2], [0.0, 0.0, 1.0]])
    return Camera(K=K, R=R, T=-R @ eye, D=np.zeros(5), width=size, height=size)


def render_mesh(vertices: np.ndarray, faces: np.ndarray, camera) -> np.ndarray:
    """(H, W, 3) uint8 grey Lambert render of the mesh on white."""
    from neuralbody.data.cameras import pixel_rays
    from neuralbody.geometry.normals import vertex_normals
    from neuralbody.geometry.raycast import cast_rays
    from neuralbody.synth.shading import interpolate, lambert

    v, f = torch.tensor(vertices, dtype=torch.float32), torch.tensor(faces, dtype=torch.int64)
    origins, directions = (torch.tensor(a, dtype=torch.float32) for a in pixel_rays(camera))
    hits = cast_rays(v, f, origins, directions)
    normals = interpolate(vertex_normals(v, f), f, hits.face_ids[hits.hit], hits.barycentrics[hits.hit])
    normals = normals / normals.norm(dim=1, keepdim=True).clamp_min(1e-12)
    albedo = torch.full_like(normals, 0.8)
    colour = torch.ones(len(origins), 3)
    colour[hits.hit] = lambert(albedo, normals, directions[hits.hit])
    return (colour.reshape(camera.height, camera.width, 3).numpy() * 255 + 0.5).astype(np.uint8)


def input_crops(capture, frame: int, views: list[int], box_min, box_max, size: int) -> list[np.ndarray]:
    from neuralbody.recon.views import crop_image, crop_window

    crops = []
    for view in views:
        window = crop_window(capture.cameras[view], box_min, box_max, padding=0.05)
        crops.append((crop_image(capture.load_image(frame, view), window, size) * 255 + 0.5).astype(np.uint8))
    return crops


def corpus_sheet(corpus_dir: Path, people: int = 6, views=(0, 2, 4, 6), frames=(0, 2), size: int = 128) -> np.ndarray:
    """A contact sheet: one row a person, ``views`` x ``frames`` images each, resized to ``size``."""
    from neuralbody.data.corpus import read_corpus

    corpus = read_corpus(corpus_dir)
    rows = []
    for subject in list(corpus.subjects)[:people]:
        capture = corpus.capture(subject)
        row = [capture.load_image(f, v) for f in frames if f < capture.num_frames for v in views if v < capture.num_views]
        rows.append(np.concatenate([np.asarray(Image.fromarray((im * 255 + 0.5).astype(np.uint8)).resize((size, size),
                    Image.LANCZOS)) for im in row], axis=1))  # fmt: skip
    return np.concatenate(rows, axis=0)


def main() -> None:
    import trimesh

    from neuralbody.cli.arguments import parse_index_list
    from neuralbody.data.capture import read_capture

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--mesh", type=Path, action="append", default=[], help="a mesh (repeat: one row each)")
    parser.add_argument("--corpus", type=Path, default=None, help="instead: a contact sheet of a corpus's first people")
    parser.add_argument("--capture", type=Path, default=None, help="the capture, for the input views")
    parser.add_argument("--frame", type=int, default=0)
    parser.add_argument("--views", default="0,1,2,3")
    parser.add_argument("--size", type=int, default=320, help="side of each panel, pixels")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if args.corpus is not None:
        Image.fromarray(corpus_sheet(args.corpus)).save(args.out)
        logging.info("wrote %s", args.out)
        return
    if not args.mesh:
        parser.error("give --mesh (one or more) or --corpus")
    meshes = [trimesh.load(path, process=False) for path in args.mesh]
    vertices = np.asarray(meshes[0].vertices)  # the first mesh frames them all
    box_min, box_max = vertices.min(axis=0), vertices.max(axis=0)
    centre = (box_min + box_max) / 2
    extent = float(np.max(box_max - box_min))
    start = 0.0
    rows = []
    if args.capture is not None:
        capture = read_capture(args.capture)
        views = parse_index_list(args.views, limit=capture.num_views, what="views")
        rows.append(input_crops(capture, args.frame, views, box_min, box_max, args.size))
        eye = capture.cameras[views[0]].center - centre
        start = math.atan2(eye[1], eye[0])
    distance = 3.0 * extent
    focal = 0.9 * args.size * distance / extent
    cameras = [ring_camera(centre, start + k * math.pi / 2, distance, args.size, focal) for k in range(4)]
    for mesh in meshes:
        rows.append([render_mesh(np.asarray(mesh.vertices), np.asarray(mesh.faces), camera) for camera in cameras])
    width = max(len(r) for r in rows) * args.size
    sheet = np.full((len(rows) * args.size, width, 3), 255, dtype=np.uint8)
    for i, row in enumerate(rows):
        for j, panel in enumerate(row):
            sheet[i * args.size : (i + 1) * args.size, j * args.size : (j + 1) * args.size] = panel
    Image.fromarray(sheet).save(args.out)
    logging.info("wrote %s", args.out)


if __name__ == "__main__":
    main()
