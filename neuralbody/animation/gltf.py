"""A small writer of skinned meshes as binary glTF 2.0 (``.glb``): what Blender imports as a rigged mesh.

The file holds one mesh (positions, normals, vertex colours, four joints and weights per
vertex, triangle indices), one skin and a node per joint. Joints sit at their rest heads
with no rotation (translation relative to the parent joint), so a joint's global rest
transform is the translation ``T(h_j)`` and its inverse bind matrix ``T(-h_j)``; rotating a
joint node turns its subtree about its head, as the body model's kinematics do
(:mod:`neuralbody.body.lbs`).

glTF is y-up, metres, right-handed, colours linear: positions, normals and joint heads in a
z-up frame are written as ``(x, z, -y)`` (``up="z"``; importers such as Blender's turn y-up
back into their own z-up), and sRGB colours are converted to linear.

Layout (glTF 2.0 §4.4): a 12-byte header (``glTF``, version 2, length), a JSON chunk padded
with spaces and a BIN chunk padded with zeros, both to 4 bytes; every buffer view starts on a
4-byte boundary.
"""

from __future__ import annotations

import dataclasses
import json
import struct
from pathlib import Path

import numpy as np

from neuralbody.io.atomic import atomic_write_bytes

FLOAT, UNSIGNED_SHORT, UNSIGNED_INT = 5126, 5123, 5125
ARRAY_BUFFER, ELEMENT_ARRAY_BUFFER = 34962, 34963
GLB_MAGIC, JSON_CHUNK, BIN_CHUNK = 0x46546C67, 0x4E4F534A, 0x004E4942


@dataclasses.dataclass
class SkinnedMesh:
    """A mesh bound to a skeleton (V vertices, F faces, B joints), metres.

    Attributes:
        vertices: (V, 3) rest-pose positions.
        faces: (F, 3) int triangles, counter-clockwise seen from outside.
        normals: (V, 3) unit normals.
        colours: (V, 3) sRGB colours in [0, 1].
        joints: (V, 4) int joint indices (into ``joint_heads``).
        weights: (V, 4) non-negative weights, rows summing to one.
        joint_heads: (B, 3) rest heads of the joints.
        parents: B parent indices (-1: a root), parents before children.
        joint_names: B names.
    """

    vertices: np.ndarray
    faces: np.ndarray
    normals: np.ndarray
    colours: np.ndarray
    joints: np.ndarray
    weights: np.ndarray
    joint_heads: np.ndarray
    parents: list[int]
    joint_names: list[str]

    def __post_init__(self) -> None:
        count, bones = len(self.vertices), len(self.joint_heads)
        shapes = {"vertices": (count, 3), "normals": (count, 3), "colours": (count, 3), "joints": (count, 4),
                  "weights": (count, 4), "joint_heads": (bones, 3)}
        for name, shape in shapes.items():
            if getattr(self, name).shape != shape:
                raise ValueError(f"SkinnedMesh: {name} must be {shape}, got {getattr(self, name).shape}")
        if self.faces.ndim != 2 or self.faces.shape[1] != 3 or len(self.faces) == 0:
            raise ValueError(f"SkinnedMesh: faces must be (F, 3) with F > 0, got {self.faces.shape}")
        if len(self.parents) != bones or len(self.joint_names) != bones or bones > 65535:
            raise ValueError(f"SkinnedMesh: {bones} joint heads (at most 65535) need as many parents and names, got "
                             f"{len(self.parents)}, {len(self.joint_names)}")
        if any(not -1 <= p < j for j, p in enumerate(self.parents)):
            raise ValueError("SkinnedMesh: each parent must be -1 or an earlier joint")
        if self.joints.min() < 0 or self.joints.max() >= bones or self.faces.min() < 0 or self.faces.max() >= count:
            raise ValueError("SkinnedMesh: joint or vertex indices out of range")


def srgb_to_linear(colours: np.ndarray) -> np.ndarray:
    """Linear values of sRGB-encoded colours in [0, 1] (IEC 61966-2-1)."""
    c = np.clip(np.asarray(colours, dtype=np.float64), 0.0, 1.0)
    return np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)


def to_y_up(points: np.ndarray, up: str) -> np.ndarray:
    """(N, 3) points or directions of a ``up``-axis ("z" or "y") frame in glTF's y-up frame."""
    if up == "y":
        return np.asarray(points, dtype=np.float64)
    if up != "z":
        raise ValueError(f"up must be 'z' or 'y', got {up!r}")
    x, y, z = np.asarray(points, dtype=np.float64).T
    return np.stack([x, z, -y], axis=1)


class _Buffer:
    """The BIN chunk under construction: buffer views and accessors appended to a glTF document."""

    def __init__(self, document: dict) -> None:
        self.document, self.data = document, bytearray()

    def add(self, array: np.ndarray, component: int, kind: str, target: int | None = None, bounds: bool = False) -> int:
        """Append ``array`` as a buffer view plus accessor; returns the accessor's index."""
        self.data.extend(b"\0" * (-len(self.data) % 4))
        raw = np.ascontiguousarray(array).tobytes()
        view = {"buffer": 0, "byteOffset": len(self.data), "byteLength": len(raw)}
        if target is not None:
            view["target"] = target
        self.data.extend(raw)
        self.document["bufferViews"].append(view)
        per = {"SCALAR": 1, "VEC3": 3, "VEC4": 4, "MAT4": 16}[kind]
        accessor = {"bufferView": len(self.document["bufferViews"]) - 1, "componentType": component,
                    "count": int(array.size // per), "type": kind}
        if bounds:
            flat = array.reshape(-1, per)
            accessor["min"] = [float(v) for v in flat.min(axis=0)]
            accessor["max"] = [float(v) for v in flat.max(axis=0)]
        self.document["accessors"].append(accessor)
        return len(self.document["accessors"]) - 1


def glb_bytes(mesh: SkinnedMesh, *, up: str = "z", name: str = "avatar") -> bytes:
    """The ``.glb`` file of a skinned mesh (module docstring); ``up`` is the mesh's up axis."""
    document = {"asset": {"version": "2.0", "generator": "neuralbody export"}, "buffers": [], "bufferViews": [],
                "accessors": []}
    buffer = _Buffer(document)
    heads = to_y_up(mesh.joint_heads, up)
    normals = to_y_up(mesh.normals, up)
    normals = normals / np.maximum(np.linalg.norm(normals, axis=1, keepdims=True), 1e-12)
    attributes = {
        "POSITION": buffer.add(to_y_up(mesh.vertices, up).astype(np.float32), FLOAT, "VEC3", ARRAY_BUFFER, True),
        "NORMAL": buffer.add(normals.astype(np.float32), FLOAT, "VEC3", ARRAY_BUFFER),
        "COLOR_0": buffer.add(srgb_to_linear(mesh.colours).astype(np.float32), FLOAT, "VEC3", ARRAY_BUFFER),
        "JOINTS_0": buffer.add(mesh.joints.astype(np.uint16), UNSIGNED_SHORT, "VEC4", ARRAY_BUFFER),
        "WEIGHTS_0": buffer.add(mesh.weights.astype(np.float32), FLOAT, "VEC4", ARRAY_BUFFER),
    }
    indices = buffer.add(mesh.faces.astype(np.uint32).reshape(-1), UNSIGNED_INT, "SCALAR", ELEMENT_ARRAY_BUFFER, True)
    inverse_bind = np.tile(np.eye(4, dtype=np.float32), (len(heads), 1, 1))
    inverse_bind[:, :3, 3] = -heads
    inverse_bind = buffer.add(inverse_bind.transpose(0, 2, 1).copy(), FLOAT, "MAT4")  # column-major
    joint_nodes = list(range(1, len(heads) + 1))
    nodes = [{"name": name, "mesh": 0, "skin": 0}]
    for joint, parent in enumerate(mesh.parents):
        offset = heads[joint] - (heads[parent] if parent >= 0 else 0.0)
        children = [1 + c for c, p in enumerate(mesh.parents) if p == joint]
        node = {"name": mesh.joint_names[joint], "translation": [float(v) for v in offset]}
        if children:
            node["children"] = children
        nodes.append(node)
    roots = [1 + j for j, p in enumerate(mesh.parents) if p < 0]
    document.update({
        "scene": 0,
        "scenes": [{"name": name, "nodes": [0, *roots]}],
        "nodes": nodes,
        "meshes": [{"name": name, "primitives": [{"attributes": attributes, "indices": indices, "material": 0}]}],
        "materials": [{"name": "vertex colours", "pbrMetallicRoughness": {
            "baseColorFactor": [1.0, 1.0, 1.0, 1.0], "metallicFactor": 0.0, "roughnessFactor": 1.0}}],
        "skins": [{"name": "skeleton", "joints": joint_nodes, "inverseBindMatrices": inverse_bind,
                   "skeleton": roots[0]}],
    })
    binary = bytes(buffer.data) + b"\0" * (-len(buffer.data) % 4)
    document["buffers"].append({"byteLength": len(binary)})
    text = json.dumps(document, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % 4)
    total = 12 + 8 + len(text) + 8 + len(binary)
    return b"".join([struct.pack("<III", GLB_MAGIC, 2, total), struct.pack("<II", len(text), JSON_CHUNK), text,
                     struct.pack("<II", len(binary), BIN_CHUNK), binary])


def write_glb(path: str | Path, mesh: SkinnedMesh, *, up: str = "z", name: str = "avatar") -> Path:
    """Write :func:`glb_bytes` to ``path`` atomically; returns the path."""
    return atomic_write_bytes(path, glb_bytes(mesh, up=up, name=name))
