"""gDNA's adversarial loss: how sharp and how right the detail network's normals are on the training people.

Usage::

    neuralbody train-gen CORPUS --out COARSE --steps 1750 --detail-fraction 0 --points 1024     # the coarse stage
    cp -r COARSE BASE; cp -r COARSE ADV
    neuralbody train-gen CORPUS --out BASE --steps 2500 --points 1024 --resume                  # detail stage
    neuralbody train-gen CORPUS --out ADV --steps 2500 --points 1024 --resume --adversarial 1   # + adversarial
    python bench/bench_gdna_adversarial.py --corpus CORPUS --run none=BASE --run adversarial=ADV \
        [--scans 32] [--size 96] [--figure adversarial.png] [--json out.json]

For each training scan of the runs (the same scans, the same codes order) the scan is rendered from
the ring of views the adversarial loss uses (:mod:`neuralbody.gdna.normal_views`, 4 views,
``--size`` pixels), and on the same pixels the detail network's normal at each pixel's canonical
correspondence, posed by ``J^{-T}`` (the model's normal map on the scan's own geometry). Figures,
mean over the scans (median in brackets):

* **view normal consistency**: the mean cosine between the model's and the scan's normals over the pixels;
* **sharpness**: the ratio of the Laplacian energies ``E(N_model) / E(N_scan)`` over the views'
  interior pixels (:mod:`neuralbody.gdna.sharpness`; 1: as much fine detail as the scans, below 1 smoother);
* **detail FD**: the Fréchet distance between Gaussians fitted to the 3 x 3 patches of the maps'
  high-frequency parts (``--sigma`` pixels, as the discriminator sees them), the model's against
  the scans', pooled over all scans and views (one figure a run; 0: the same local statistics).

``--figure``: the front views of the first four scans, top row the scans, then one row a run.
Held-out people's fits (normal consistency with the detail network's normals) come from
``bench/bench_gdna.py --no-generative --finetune-steps 0``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
from pathlib import Path

import numpy as np
import torch

log = logging.getLogger("bench_gdna_adversarial")


def model_views(loaded, views, index: int, shapes: torch.Tensor) -> torch.Tensor:
    """(V, S, S, 3) the detail network's normal maps of training scan ``index`` on its views' pixels."""
    from neuralbody.gdna.adversarial import window_maps

    size = views.mask.shape[1]
    with torch.no_grad():
        return torch.stack([window_maps(loaded.model, views, (v, 0, 0), size, loaded.codes.shape[index],
                                        loaded.codes.detail[index], shapes)[1] for v in range(views.mask.shape[0])])


def pooled_patches(maps: torch.Tensor, masks: torch.Tensor, sigma: float) -> torch.Tensor:
    """(P, 27) detail patches of maps (V, S, S, 3) on masks (V, S, S)."""
    from neuralbody.gdna.sharpness import detail_patches

    return torch.cat([detail_patches(m, k, sigma) for m, k in zip(maps, masks)])


def scan_figures(real: torch.Tensor, fake: torch.Tensor, mask: torch.Tensor) -> dict:
    """View normal consistency and sharpness of one scan's maps (V, S, S, 3) on masks (V, S, S)."""
    from neuralbody.gdna.sharpness import laplacian_energy

    cosine = float((real[mask] * fake[mask]).sum(dim=1).mean())
    energies = [(laplacian_energy(f, m), laplacian_energy(r, m)) for f, r, m in zip(fake, real, mask)]
    count = sum(e[0][1] for e in energies)
    model_energy = sum(e[0][0] * e[0][1] for e in energies) / max(count, 1)
    scan_energy = sum(e[1][0] * e[1][1] for e in energies) / max(count, 1)
    return {"view_nc": cosine, "energy_model": model_energy, "energy_scan": scan_energy,
            "sharpness": model_energy / max(scan_energy, 1e-12)}


def picture(path: Path, real: list, fakes: dict, masks: list) -> None:
    from neuralbody.data.images import write_png
    from neuralbody.gdna.normal_render import contact_sheet

    def image(normals, mask):
        return torch.where(mask[..., None], 0.5 * (normals + 1.0), torch.ones(3)).numpy()

    tiles = [image(r, m) for r, m in zip(real, masks)]
    for maps in fakes.values():
        tiles += [image(f, m) for f, m in zip(maps, masks)]
    write_png(path, contact_sheet(tiles, len(real)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, required=True)
    parser.add_argument("--run", action="append", required=True, help="NAME=RUN, a trained run (repeat)")
    parser.add_argument("--scans", type=int, default=None, help="the first N training scans (default all)")
    parser.add_argument("--size", type=int, default=96, help="pixels a view side (default 96, as training)")
    parser.add_argument("--sigma", type=float, default=2.0, help="high-pass of the detail FD, pixels (default 2)")
    parser.add_argument("--figure", type=Path, default=None, help="PNG: front views, the scans then each run")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    torch.set_num_threads(int(os.environ.get("NEURALBODY_THREADS", "1")))
    from neuralbody.gdna.normal_views import ViewOptions, scan_views
    from neuralbody.gdna.run_files import load_run
    from neuralbody.gdna.scans import load_scan
    from neuralbody.gdna.shape_skinning import shape_skinning

    runs = {name: load_run(path) for name, path in (item.split("=", 1) for item in args.run)}
    first = next(iter(runs.values()))
    refs = [(str(s), int(f)) for s, f in first.payload["scans"]][: args.scans]
    rows = {name: [] for name in runs}
    patches = {"scans": [], **{name: [] for name in runs}}
    fronts = {"real": [], "mask": [], **{name: [] for name in runs}}
    for index, (subject, frame) in enumerate(refs):
        scan = load_scan(args.corpus / subject, frame)
        skinning = shape_skinning(first.body, scan.shapes)
        transforms = skinning.bone_transforms(scan.poses[None])[0]
        views = scan_views(skinning, transforms, scan.vertices, scan.faces, ViewOptions(size=args.size))
        for name, loaded in runs.items():
            fake = model_views(loaded, views, index, scan.shapes)
            rows[name].append({"subject": subject, **scan_figures(views.real, fake, views.mask)})
            patches[name].append(pooled_patches(fake, views.mask, args.sigma))
            if index < 4:
                fronts[name].append(fake[0])
        patches["scans"].append(pooled_patches(views.real, views.mask, args.sigma))
        if index < 4:
            fronts["real"].append(views.real[0])
            fronts["mask"].append(views.mask[0])
        log.info("%s: %s", subject, {n: {k: round(v, 4) for k, v in r[-1].items() if k != "subject"}
                                     for n, r in rows.items()})
    print(f"\n{len(refs)} training scans, 4 views of {args.size}², mean (median)\n")
    from neuralbody.gdna.sharpness import frechet_distance

    scans = torch.cat(patches["scans"])
    print("| run | view normal consistency | sharpness E(model)/E(scan) | detail FD |\n|---|---|---|---|")
    for name, values in rows.items():
        nc, sharp = [r["view_nc"] for r in values], [r["sharpness"] for r in values]
        distance = frechet_distance(torch.cat(patches[name]), scans)
        rows[name].append({"detail_fd": distance})
        print(f"| {name} | {np.mean(nc):.3f} ({np.median(nc):.3f}) | {np.mean(sharp):.3f} ({np.median(sharp):.3f}) | "
              f"{distance:.4f} |")
    if args.figure:
        picture(args.figure, fronts["real"], {n: fronts[n] for n in runs}, fronts["mask"])
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
