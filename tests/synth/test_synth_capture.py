"""``neuralbody synth`` captures: geometry consistency through the reader, determinism, detail."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch
from fixtures_capture import TINY_CAPTURE

from neuralbody.data.cameras import pixel_rays, project_points
from neuralbody.data.capture import read_capture
from neuralbody.data.writer import depth_relpath, read_depth_png
from neuralbody.geometry.normals import vertex_normals
from neuralbody.geometry.raycast import cast_rays

pytestmark = pytest.mark.anny


def _visible(camera, vertices: np.ndarray, faces: np.ndarray, tolerance: float = 0.01) -> np.ndarray:
    """(V,) bool: nothing on the mesh lies between the camera and the vertex (independent ray cast)."""
    origins = np.broadcast_to(camera.center, vertices.shape).copy()
    offsets = vertices - origins
    distance = np.linalg.norm(offsets, axis=1)
    hits = cast_rays(vertices, faces, origins, offsets / distance[:, None])
    return (~hits.hit.numpy()) | (hits.t.numpy() >= distance - tolerance)


def test_vertices_inside_images_and_visible_ones_inside_masks(tiny_capture):
    capture = read_capture(tiny_capture)
    assert capture.num_views == TINY_CAPTURE["views"] and capture.num_frames == TINY_CAPTURE["frames"]
    assert all(camera.has_distortion for camera in capture.cameras)  # rendered through the lens
    faces = np.load(tiny_capture / "gt_meshes" / "0.npz")["faces"]
    checked = 0
    for frame in range(0, capture.num_frames, 3):
        vertices = capture.load_vertices(frame).astype(np.float64)
        normals = vertex_normals(torch.from_numpy(vertices), torch.from_numpy(faces).long()).numpy()
        for view, camera in enumerate(capture.cameras):
            uv, z = project_points(camera, vertices)  # distortion included
            assert np.all(z > 0)
            assert np.all((uv > -0.5).all(1) & (uv[:, 0] < camera.width - 0.5) & (uv[:, 1] < camera.height - 0.5))
            mask = capture.load_mask(frame, view)
            depth = read_depth_png(tiny_capture / depth_relpath(capture.image_relpath(frame, view)))
            np.testing.assert_array_equal(depth > 0, mask)
            visible = _visible(camera, vertices, faces)
            pixels = np.round(uv[visible]).astype(int)
            # a silhouette vertex may sit on a pixel whose coverage is just under one half: allow one pixel
            padded = np.pad(mask, 1)
            near = np.zeros_like(mask)
            for dv in range(3):
                for du in range(3):
                    near |= padded[dv : dv + mask.shape[0], du : du + mask.shape[1]]
            assert near[pixels[:, 1], pixels[:, 0]].all()
            # every vertex, hidden ones included, lies in the silhouette (the projection of the whole mesh)
            all_pixels = np.round(uv).astype(int)
            assert near[all_pixels[:, 1], all_pixels[:, 0]].all()
            assert mask[pixels[:, 1], pixels[:, 0]].mean() > 0.75  # the rest: fingers, toes, silhouettes at 64 px
            # depth = camera z of the nearest surface sample in the pixel (a 64 px pixel spans ~4 cm):
            # at vertices facing the camera, close to the vertex's z and hardly ever farther
            view_dirs = vertices[visible] - camera.center
            cosine = -(normals[visible] * view_dirs).sum(1) / np.linalg.norm(view_dirs, axis=1)
            facing = mask[pixels[:, 1], pixels[:, 0]] & (cosine > 0.5)
            error = depth[pixels[facing, 1], pixels[facing, 0]] - z[visible][facing]
            assert np.median(np.abs(error)) < 0.02
            assert (error < 0.01).mean() > 0.95
            checked += int(visible.sum())
    assert checked > 1000


def test_reader_reads_back_what_synth_wrote(tiny_capture):
    capture = read_capture(tiny_capture)
    annots = np.load(tiny_capture / "annots.npy", allow_pickle=True).item()
    meta = json.loads((tiny_capture / "neuralbody.json").read_text())
    assert capture.meta == meta
    for view, camera in enumerate(capture.cameras):
        np.testing.assert_array_equal(camera.K, annots["cams"]["K"][view])
        np.testing.assert_array_equal(camera.R, annots["cams"]["R"][view])
        np.testing.assert_allclose(camera.T * 1000.0, annots["cams"]["T"][view][:, 0], rtol=1e-12)
        np.testing.assert_array_equal(camera.D, annots["cams"]["D"][view][:, 0])
        assert camera.name == meta["cameras"][view]
        # the ring: every camera looks at the person's box centre, about 3 m away
        assert 2.5 < np.linalg.norm(camera.center[:2]) < 3.6
    from PIL import Image

    for frame in (0, capture.num_frames - 1):
        body = capture.load_body(frame)
        np.testing.assert_array_equal(body.vertices.numpy(), np.load(tiny_capture / "vertices" / f"{frame}.npy"))
        mesh = np.load(tiny_capture / "gt_meshes" / f"{frame}.npz")
        np.testing.assert_array_equal(mesh["vertices"], body.vertices.numpy())
        params = capture.load_params(frame)
        assert params["poses"].shape == (1, 312) and params["shapes"].shape == (1, 6)
        np.testing.assert_array_equal(body.Th.numpy(), params["Th"][0])
        for view in range(capture.num_views):
            raw = np.asarray(Image.open(capture.image_path(frame, view)))
            np.testing.assert_allclose(capture.load_image(frame, view), raw / 255.0, atol=1e-6)
            raw_mask = np.asarray(Image.open(tiny_capture / "mask_cihp" / capture.image_relpath(frame, view)))
            np.testing.assert_array_equal(capture.load_mask(frame, view), raw_mask != 0)
            image = capture.load_image(frame, view)
            assert image[~capture.load_mask(frame, view)].max() < 0.7  # black background (edges anti-aliased)
            assert image[capture.load_mask(frame, view)].mean() > 0.08
    assert meta["train_cameras"] == [0, 2, 3, 4] and meta["test_cameras"] == [1, 5]
    assert meta["frames"] == {"train": [0, 6], "novel_pose": [6, 8]}
    assert meta["distortion"] is True and meta["background"] == [0.0, 0.0, 0.0]


def test_same_seed_same_bytes(tiny_capture, anny_body, tmp_path):
    """Same seed and same arguments: the same bytes. Another frame count: the same motion start
    to float32 rounding (the body model's batched products may round differently per batch size)."""
    from neuralbody.synth.generate import SynthConfig, generate_capture

    config = SynthConfig(**{**TINY_CAPTURE, "frames": 2, "views": 2})
    first = generate_capture(tmp_path / "a", config, body=anny_body, progress=False)
    second = generate_capture(tmp_path / "b", config, body=anny_body, progress=False)
    files = sorted(p.relative_to(first) for p in first.rglob("*") if p.is_file())
    assert len(files) == 2 + 2 * 2 * 3 + 2 * 3
    for rel in files:
        assert (first / rel).read_bytes() == (second / rel).read_bytes(), rel
    # the tiny capture (8 frames in one batch) starts with the same frame 0, to 1e-6 m
    np.testing.assert_allclose(
        np.load(first / "vertices" / "0.npy"), np.load(tiny_capture / "vertices" / "0.npy"), rtol=0, atol=1e-6
    )
    other = generate_capture(tmp_path / "c", dataclasses.replace(config, seed=1), body=anny_body, progress=False)
    assert (other / "Camera_00" / "000001.png").read_bytes() != (first / "Camera_00" / "000001.png").read_bytes()


def _gradient_energy(image: np.ndarray, mask: np.ndarray) -> float:
    from scipy.ndimage import binary_erosion

    grey = image.astype(np.float64).mean(axis=2) / 255.0
    gx, gy = np.diff(grey, axis=1)[:-1], np.diff(grey, axis=0)[:, :-1]
    inner = binary_erosion(mask, iterations=2)[:-1, :-1]
    return float((gx**2 + gy**2)[inner].mean())


def test_texture_has_detail(tiny_capture, anny_body):
    """Gradient energy inside the person: the textured render must far exceed a flat-colour one."""
    from neuralbody.synth import generate as gen
    from neuralbody.synth.texture import REGIONS, make_texture, vertex_regions

    capture = read_capture(tiny_capture)
    params = capture.load_params(0)
    poses, shapes = torch.tensor(params["poses"]), torch.tensor(params["shapes"])
    out = anny_body(poses, shapes, torch.tensor(params["Rh"]), torch.tensor(params["Th"]))
    regions = vertex_regions(
        rest_vertices=out.rest_vertices[0],
        skinning_weights=out.skinning_weights,
        joint_names=anny_body.joint_names,
        rest_joints=out.rest_joints[0],
    )
    appearance = gen.Appearance(
        rest_vertices=out.rest_vertices[0],
        region_onehot=torch.nn.functional.one_hot(regions, len(REGIONS)).float(),
        texture=make_texture(0, floor_z=0.025),
    )
    cameras = [camera.scaled(4.0) for camera in capture.cameras]  # 256 x 256, the default resolution
    rays = gen.camera_rays(cameras, supersample=1)
    textured = gen.render_views(rays=rays, vertices=out.vertices[0], faces=out.faces, appearance=appearance)
    flat = gen.render_views(rays=rays, vertices=out.vertices[0], faces=out.faces, appearance=appearance, flat=True)
    np.testing.assert_array_equal(textured.masks, flat.masks)
    energy_textured = sum(_gradient_energy(image, mask) for image, mask in zip(textured.images, textured.masks))
    energy_flat = sum(_gradient_energy(image, mask) for image, mask in zip(flat.images, flat.masks))
    assert energy_textured > 3.0 * energy_flat
    # the rendered mask equals the ray caster's hits through pixel centres (supersample 1)
    o, d = pixel_rays(cameras[1])
    hits = cast_rays(out.vertices[0], out.faces, o, d)
    np.testing.assert_array_equal(textured.masks[1].reshape(-1), hits.hit.numpy())
