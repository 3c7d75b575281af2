"""One frame of a head video as the avatars see it: parameters, bone transforms, the posed box.

The box where the head can be is the face model's mesh posed with the frame's parameters
(:func:`neuralbody.head.rig.pose_head`), padded by ``padding`` metres: as IMAvatar bounds its
rays with the tracked FLAME mesh.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch

from neuralbody.head.capture import FrameParams
from neuralbody.head.deformation import FrameCode, pose_feature
from neuralbody.head.rig import HeadRig, pose_head


@dataclasses.dataclass
class HeadFrame:
    """A frame's inputs.

    Attributes:
        code: expression, pose feature and bone transforms.
        pose: (4, 3) axis-angle per bone, radians.
        box_min, box_max: (3,) world box of the posed head, metres.
    """

    code: FrameCode
    pose: torch.Tensor
    box_min: torch.Tensor
    box_max: torch.Tensor


def head_frame(rig: HeadRig, params: FrameParams, padding: float = 0.015) -> HeadFrame:
    """The :class:`HeadFrame` of a frame's parameters (bone transforms as given in ``params``)."""
    expression = torch.tensor(np.asarray(params.expression), dtype=torch.float32)
    pose = torch.tensor(np.asarray(params.pose), dtype=torch.float32)
    vertices, _ = pose_head(rig, expression[None], pose[None])
    code = FrameCode(expression=expression, pose_feature=pose_feature(pose),
                     transforms=torch.tensor(np.asarray(params.bone_transforms), dtype=torch.float32))
    return HeadFrame(code=code, pose=pose, box_min=vertices[0].min(dim=0).values - padding,
                     box_max=vertices[0].max(dim=0).values + padding)
