"""The synthetic head's colour: a per-vertex albedo on the rest mesh.

Skin of a seeded tone (:func:`neuralbody.synth.texture.make_texture`'s palette) mottled by
fractal noise (:func:`neuralbody.synth.texture.fbm`, 3 cm blobs, +-15 %), and, placed by rules
on the rest mesh (metres, z up, face along -y; the nose tip is the most forward vertex):

* hair: above 4 cm over the eyes' height and behind the front of the forehead, and the back
  of the head above the ears, in the seed's hair colour;
* eyes: vertices within 14 mm of an eye bone: white, an iris (dark blue-grey) where the
  direction from the eye's centre is within 25 degrees of straight ahead, a black pupil within 9;
* brows: a 9 mm band 2-3 cm above each eye, 1-5 cm from the middle, dark hair colour;
* lips: within 2.5 cm of the middle, 2.3-5 cm below the nose tip and in front: reddened skin.

The colour moves with the surface (it is interpolated from the rest vertices at each hit),
so expressions move the pattern, as real skin does.
"""

from __future__ import annotations

import numpy as np
import torch

from neuralbody.head.rig import HeadRig
from neuralbody.synth.texture import fbm, make_texture


def _inside_band(values: torch.Tensor, low: float, high: float) -> torch.Tensor:
    return (values >= low) & (values <= high)


def vertex_albedo(rig: HeadRig, seed: int) -> torch.Tensor:
    """(V, 3) albedo in [0, 1] of the rig's rest vertices (the module docstring's rules)."""
    texture = make_texture(seed, floor_z=0.0)
    x = rig.rest_vertices
    skin, hair = texture.palette[0, 0], texture.palette[4, 0]
    colour = skin[None] * (1.0 + 0.3 * fbm(texture, x.double(), scale=0.03).float()[:, None])
    eyes = rig.eye_centres
    eye_height = float(eyes[:, 2].mean())
    front = float(x[:, 1].min())
    nose = x[x[:, 1].argmin()]
    hair_mask = ((x[:, 2] > eye_height + 0.04) & (x[:, 1] > front + 0.035)) | ((x[:, 2] > eye_height) & (x[:, 1] > 0.0))
    colour[hair_mask] = hair * (1.0 + 0.4 * fbm(texture, x[hair_mask].double() * 4.0, scale=0.02).float()[:, None])
    for centre in eyes:
        offset = x - centre
        distance = offset.norm(dim=1)
        ahead = -offset[:, 1] / distance.clamp_min(1e-9)
        on_eye = distance < 0.014
        colour[on_eye] = torch.tensor([0.92, 0.9, 0.88])
        colour[on_eye & (ahead > float(np.cos(np.radians(25))))] = torch.tensor([0.25, 0.32, 0.38])
        colour[on_eye & (ahead > float(np.cos(np.radians(9))))] = torch.tensor([0.03, 0.03, 0.03])
        brow = (_inside_band(x[:, 2] - centre[2], 0.02, 0.029) & _inside_band(x[:, 0].abs(), 0.01, 0.05)
                & (torch.sign(x[:, 0]) == torch.sign(centre[0])) & (x[:, 1] < centre[1] + 0.01))
        colour[brow & ~on_eye] = hair * 0.8
    lips = (_inside_band(nose[2] - x[:, 2], 0.023, 0.05) & (x[:, 0].abs() < 0.025) & (x[:, 1] < nose[1] + 0.03))
    colour[lips] = skin * torch.tensor([0.85, 0.45, 0.45])
    return colour.clamp(0.0, 1.0)
