"""Neural Body Fitting: part segmentation against raw RGB as the network's input (the paper's finding).

One synthetic dataset (``neuralbody.fitting.nbf_data``: random Anny shapes and poses, random
cameras, low-resolution crops rendered with the Warp ray caster; cached as an .npz under
``--work``) is split into training and test samples. The same network
(``neuralbody.fitting.nbf_network``, body model inside) is trained with the same budget (steps x
batch, the same batches, the same seed) once on the colour-coded part segmentation and once on
the RGB image of every sample, then evaluated on the test samples: MPJPE in millimetres over the
16 joints of ``NBF_JOINTS`` after root (pelvis) alignment, camera frame. A reference line gives
the MPJPE of always predicting the training set's mean root-relative joints. With
``--degrade`` the segmentation network is also tested on part maps whose labels were corrupted
(each pixel's label replaced by a random neighbour's with the given probability).

Usage::

    NEURALBODY_THREADS=1 OMP_NUM_THREADS=1 python bench/bench_nbf.py --work /tmp/nbf
    # options: --samples 6000 --test 1000 --res 64 --steps 2500 --batch 32 --json out.json --degrade 0.3
    #          --capture CAPTURE (score the views-combined guesses on a synthetic capture)  --reuse (trained weights)
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

log = logging.getLogger("bench_nbf")


def degrade_parts(parts: np.ndarray, probability: float, seed: int = 0) -> np.ndarray:
    """(N, H, W) part maps where each pixel takes a random 8-neighbour's label with ``probability``."""
    rng = np.random.default_rng(seed)
    n, h, w = parts.shape
    dv, du = rng.integers(-1, 2, (2, n, h, w))
    rows = np.clip(np.arange(h)[None, :, None] + dv, 0, h - 1)
    cols = np.clip(np.arange(w)[None, None, :] + du, 0, w - 1)
    neighbour = parts[np.arange(n)[:, None, None], rows, cols]
    return np.where(rng.random(parts.shape) < probability, neighbour, parts).astype(parts.dtype)


def capture_guess_errors(model, kind: str, capture, body) -> tuple[float, float]:
    """Mean (MPJPE mm, orientation error deg) of the views-combined NBF guess against a synthetic capture's
    ground truth (world frame, root-aligned, :data:`NBF_JOINTS`). RGB: crops of the images, as
    ``neuralbody fit --init nbf`` makes them; segmentation: oracle part maps rendered from the true mesh."""
    from neuralbody.fitting import nbf_data, nbf_init, nbf_parts
    from neuralbody.geometry.rotations import axis_angle_to_matrix, matrix_to_axis_angle

    names = body.joint_names
    bone_ids = [names.index(b) for b in nbf_data.NBF_BONES]
    joint_ids = [names.index(j) for j in nbf_data.NBF_JOINTS]
    look = nbf_data._body_look(body)

    def joints(bones, Rh):
        full = torch.zeros(1, body.num_joints, 3)
        full[0, bone_ids] = torch.as_tensor(bones, dtype=torch.float32)
        with torch.no_grad():
            j = body(full.reshape(1, -1), None, torch.as_tensor(Rh, dtype=torch.float32).reshape(1, 3)).joints[0, joint_ids]
        return (j - j[0]).numpy()

    errors, angles = [], []
    for frame in range(capture.num_frames):
        params = capture.load_params(frame)
        with torch.no_grad():
            rest = body(torch.from_numpy(params["poses"]).float().reshape(1, -1),
                        torch.from_numpy(params["shapes"]).float().reshape(1, -1)).rest_vertices[0]  # fmt: skip
        vertices = torch.from_numpy(capture.load_vertices(frame))
        crops, cameras = [], []
        for view, camera in enumerate(capture.cameras):
            crop = nbf_data.crop_camera(camera, nbf_init.mask_box(capture.load_mask(frame, view)), model.resolution)
            if kind == "rgb":
                crops.append(nbf_init.crop_image(capture.load_image(frame, view), camera, crop))
            else:
                parts, _ = nbf_data.render_crop(crop, vertices, rest, look, np.random.default_rng(0))
                crops.append(nbf_parts.colour_code(parts))
            cameras.append(crop)
        bones, Rh = nbf_init.combine_views(*nbf_init.predict_views(model, np.stack(crops), cameras))
        truth = joints(params["poses"].reshape(-1, 3)[bone_ids], params["Rh"])
        errors.append(1000 * np.linalg.norm(joints(bones, Rh) - truth, axis=1).mean())
        R = axis_angle_to_matrix(torch.tensor(np.stack([Rh, params["Rh"].reshape(3)]), dtype=torch.float64))
        angles.append(float(torch.rad2deg(matrix_to_axis_angle(R[0].T @ R[1]).norm())))
    return float(np.mean(errors)), float(np.mean(angles))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", type=Path, default=Path("/tmp/nbf"), help="cache folder (dataset .npz, checkpoints)")
    parser.add_argument("--samples", type=int, default=6000, help="rendered samples in all (default 6000)")
    parser.add_argument("--test", type=int, default=1000, help="of which held out for testing (default 1000)")
    parser.add_argument("--res", type=int, default=64, help="crop side in pixels (default 64)")
    parser.add_argument("--steps", type=int, default=2500, help="training steps per input kind (default 2500)")
    parser.add_argument("--batch", type=int, default=32, help="batch size (default 32)")
    parser.add_argument("--kinds", default="segmentation,rgb", help="input kinds to train (default both)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--degrade", type=float, default=0.0, help="also test the segmentation net on corrupted maps")
    parser.add_argument("--capture", type=Path, default=None,
                        help="also score each network's views-combined guess on this synthetic capture")
    parser.add_argument("--reuse", action="store_true", help="load WORK/nbf_KIND.pt when it exists instead of training")
    parser.add_argument("--json", type=Path, default=None, help="write the figures here")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    torch.set_num_threads(int(os.environ.get("NEURALBODY_THREADS", "1")))
    if not 0 < args.test < args.samples:
        parser.error("--test must be between 0 and --samples")

    from neuralbody.body.anny import load_anny
    from neuralbody.fitting import nbf_data, nbf_train
    from neuralbody.fitting.nbf_network import mpjpe_mm

    body = load_anny()
    config = nbf_data.NBFDataConfig(count=args.samples, resolution=args.res, seed=args.seed)
    cache = args.work / f"nbf_data_{args.res}px_{args.samples}_seed{args.seed}.npz"
    dataset = nbf_data.load_or_generate(cache, body, config, progress=not args.no_progress)
    train, test = dataset.subset(slice(0, args.samples - args.test)), dataset.subset(slice(args.samples - args.test, None))
    root = nbf_data.NBF_JOINTS.index(nbf_data.ROOT_JOINT)
    mean_joints = torch.from_numpy(train.joints3d.mean(0, keepdims=True)).float().expand(len(test), -1, -1)
    baseline = float(mpjpe_mm(mean_joints, torch.from_numpy(test.joints3d).float(), root).mean())
    results = {
        "dataset": {"samples": args.samples, "train": len(train), "test": len(test), "resolution": args.res,
                    "generation_seconds": round(dataset.seconds, 1), "cache": str(cache)},
        "budget": {"steps": args.steps, "batch": args.batch, "threads": torch.get_num_threads()},
        "mean_pose_baseline_mm": round(baseline, 1),
        "runs": {},
    }  # fmt: skip
    for kind in [k for k in args.kinds.split(",") if k]:
        train_config = nbf_train.NBFTrainConfig(input_kind=kind, steps=args.steps, batch=args.batch, seed=args.seed)
        started = time.perf_counter()
        weights = args.work / f"nbf_{kind}.pt"
        if args.reuse and weights.is_file():
            model, _ = nbf_train.load_nbf(weights, body)
            timing = {"reused": str(weights)}
        else:
            run = nbf_train.train_nbf(train, body, train_config, checkpoint=weights, progress=not args.no_progress)
            model = run.model
            timing = {"train_seconds": round(run.seconds, 1), "train_cpu_seconds": round(run.cpu_seconds, 1),
                      "final_loss": round(run.history[-1][1], 4)}  # fmt: skip
        test_mm = nbf_train.evaluate_mpjpe(model, test, kind)
        train_mm = nbf_train.evaluate_mpjpe(model, train.subset(slice(0, len(test))), kind)
        entry = {
            "test_mpjpe_mm": round(float(test_mm.mean()), 1), "test_median_mm": round(float(np.median(test_mm)), 1),
            "train_mpjpe_mm": round(float(train_mm.mean()), 1), **timing,
            "wall_seconds": round(time.perf_counter() - started, 1), "weights": str(weights),
        }  # fmt: skip
        if args.capture is not None:
            from neuralbody.data.capture import read_capture

            mm, degrees = capture_guess_errors(model, kind, read_capture(args.capture), body)
            entry["capture_guess_mpjpe_mm"], entry["capture_guess_orientation_deg"] = round(mm, 1), round(degrees, 1)
        if kind == "segmentation" and args.degrade > 0:
            noisy = test.subset(slice(None))
            noisy.parts = degrade_parts(test.parts, args.degrade, args.seed)
            entry[f"test_mpjpe_mm_degraded_{args.degrade:g}"] = round(float(nbf_train.evaluate_mpjpe(model, noisy, kind).mean()), 1)
        results["runs"][kind] = entry
        log.info("%s: %s", kind, entry)

    d = results["dataset"]
    print(f"\nNBF on {d['train']} training / {d['test']} test samples at {d['resolution']}x{d['resolution']} "
          f"(rendered in {d['generation_seconds']} s); {args.steps} steps x {args.batch}, "
          f"{results['budget']['threads']} thread(s)")  # fmt: skip
    print(f"{'input':<14}{'test MPJPE mm':>15}{'median mm':>11}{'train MPJPE mm':>16}{'train s':>9}{'cpu s':>8}")
    print("-" * 73)
    for kind, e in results["runs"].items():
        print(f"{kind:<14}{e['test_mpjpe_mm']:>15.1f}{e['test_median_mm']:>11.1f}{e['train_mpjpe_mm']:>16.1f}"
              f"{e.get('train_seconds', float('nan')):>9.0f}{e.get('train_cpu_seconds', float('nan')):>8.0f}")  # fmt: skip
    print(f"{'mean pose':<14}{baseline:>15.1f}")
    for kind, e in results["runs"].items():
        for key, value in e.items():
            if key.startswith("test_mpjpe_mm_degraded"):
                print(f"{kind} net on corrupted part maps ({key.rsplit('_', 1)[1]} of pixels): {value:.1f} mm")
    for kind, e in results["runs"].items():
        if "capture_guess_mpjpe_mm" in e:
            source = "image crops" if kind == "rgb" else "oracle part maps"
            print(f"{kind} guess on {args.capture} ({source}, views combined): {e['capture_guess_mpjpe_mm']:.1f} mm, "
                  f"orientation {e['capture_guess_orientation_deg']:.1f} deg")  # fmt: skip
    if args.json:
        from neuralbody.io.atomic import atomic_write_text

        atomic_write_text(args.json, json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
