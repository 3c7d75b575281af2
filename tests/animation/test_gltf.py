"""The .glb writer, read back by an independent parser written here from the glTF 2.0 spec."""

from __future__ import annotations

import json
import struct

import numpy as np
import pytest

from neuralbody.animation.gltf import SkinnedMesh, glb_bytes, srgb_to_linear, write_glb

COMPONENTS = {5126: ("<f4", 4), 5123: ("<u2", 2), 5125: ("<u4", 4), 5121: ("<u1", 1)}
WIDTH = {"SCALAR": 1, "VEC2": 2, "VEC3": 3, "VEC4": 4, "MAT4": 16}


def parse_glb(data: bytes) -> tuple[dict, bytes]:
    """Header, then a JSON chunk and a BIN chunk, each length-prefixed and 4-byte aligned."""
    magic, version, length = struct.unpack_from("<III", data, 0)
    assert magic == 0x46546C67 and version == 2 and length == len(data)
    json_length, json_type = struct.unpack_from("<II", data, 12)
    assert json_type == 0x4E4F534A and json_length % 4 == 0
    document = json.loads(data[20 : 20 + json_length].decode("utf-8"))
    offset = 20 + json_length
    bin_length, bin_type = struct.unpack_from("<II", data, offset)
    assert bin_type == 0x004E4942 and bin_length % 4 == 0 and offset + 8 + bin_length == len(data)
    return document, data[offset + 8 :]


def read_accessor(document: dict, binary: bytes, index: int) -> np.ndarray:
    """The accessor's values (count, width), checking that they fit their buffer view."""
    accessor = document["accessors"][index]
    view = document["bufferViews"][accessor["bufferView"]]
    dtype, size = COMPONENTS[accessor["componentType"]]
    width = WIDTH[accessor["type"]]
    needed = accessor["count"] * width * size
    assert view["byteOffset"] % 4 == 0 and accessor.get("byteOffset", 0) + needed <= view["byteLength"]
    assert view["byteOffset"] + view["byteLength"] <= document["buffers"][view["buffer"]]["byteLength"]
    start = view["byteOffset"] + accessor.get("byteOffset", 0)
    return np.frombuffer(binary[start : start + needed], dtype=dtype).reshape(accessor["count"], width)


def _mesh() -> SkinnedMesh:
    """A tetrahedron bound to a three-joint chain standing along z."""
    vertices = np.array([[0.0, 0.0, 0.0], [0.2, 0.0, 0.0], [0.0, 0.2, 0.0], [0.0, 0.0, 0.5]])
    faces = np.array([[0, 2, 1], [0, 1, 3], [0, 3, 2], [1, 2, 3]])
    normals = vertices - vertices.mean(axis=0)
    weights = np.array([[0.7, 0.3, 0.0, 0.0], [1.0, 0, 0, 0], [0.5, 0.25, 0.25, 0.0], [0.1, 0.9, 0, 0]])
    joints = np.array([[0, 1, 2, 0], [0, 0, 0, 0], [0, 1, 2, 0], [1, 2, 0, 0]])
    return SkinnedMesh(vertices, faces, normals / np.linalg.norm(normals, axis=1, keepdims=True),
                       np.array([[1.0, 0.5, 0.0]] * 4), joints, weights,
                       np.array([[0.0, 0.0, 0.1], [0.0, 0.0, 0.3], [0.05, 0.0, 0.45]]), [-1, 0, 1], ["hips", "spine", "head"])


def test_glb_parses_and_holds_the_skinned_mesh(tmp_path):
    mesh = _mesh()
    path = write_glb(tmp_path / "tetra.glb", mesh, up="z")
    document, binary = parse_glb(path.read_bytes())
    assert document["asset"]["version"] == "2.0"
    primitive = document["meshes"][0]["primitives"][0]
    attributes = primitive["attributes"]
    positions = read_accessor(document, binary, attributes["POSITION"])
    x, y, z = mesh.vertices.T  # z-up written y-up: (x, z, -y)
    np.testing.assert_allclose(positions, np.stack([x, z, -y], axis=1), atol=1e-7)
    accessor = document["accessors"][attributes["POSITION"]]
    np.testing.assert_allclose(accessor["min"], positions.min(axis=0)) and np.testing.assert_allclose(
        accessor["max"], positions.max(axis=0))
    indices = read_accessor(document, binary, primitive["indices"]).reshape(-1, 3)
    np.testing.assert_array_equal(indices, mesh.faces)
    weights = read_accessor(document, binary, attributes["WEIGHTS_0"])
    np.testing.assert_allclose(weights.sum(axis=1), 1.0, atol=1e-6)
    joints = read_accessor(document, binary, attributes["JOINTS_0"])
    skin = document["skins"][0]
    assert joints.max() < len(skin["joints"]) == 3
    colours = read_accessor(document, binary, attributes["COLOR_0"])
    np.testing.assert_allclose(colours[0], [1.0, 0.21404, 0.0], atol=1e-4)  # sRGB 0.5 is linear 0.214
    normals = read_accessor(document, binary, attributes["NORMAL"])
    np.testing.assert_allclose(np.linalg.norm(normals, axis=1), 1.0, atol=1e-6)
    # joints: names, hierarchy, and inverse bind matrices that undo each joint's global rest transform
    nodes = document["nodes"]
    assert [nodes[j]["name"] for j in skin["joints"]] == ["hips", "spine", "head"]
    assert nodes[skin["joints"][0]]["children"] == [skin["joints"][1]]
    inverse_bind = read_accessor(document, binary, skin["inverseBindMatrices"]).reshape(-1, 4, 4).transpose(0, 2, 1)
    parents = {child: j for j in skin["joints"] for child in nodes[j].get("children", [])}
    for k, node_index in enumerate(skin["joints"]):
        world, walk = np.eye(4), node_index
        while walk is not None:
            local = np.eye(4)
            local[:3, 3] = nodes[walk].get("translation", [0, 0, 0])
            world, walk = local @ world, parents.get(walk)
        np.testing.assert_allclose(inverse_bind[k] @ world, np.eye(4), atol=1e-6)
        head = mesh.joint_heads[k]
        np.testing.assert_allclose(world[:3, 3], [head[0], head[2], -head[1]], atol=1e-6)
    scene = document["scenes"][document["scene"]]
    assert 0 in scene["nodes"] and nodes[0]["skin"] == 0 and nodes[0]["mesh"] == 0


def test_y_up_meshes_are_written_as_they_are():
    mesh = _mesh()
    document, binary = parse_glb(glb_bytes(mesh, up="y"))
    positions = read_accessor(document, binary, document["meshes"][0]["primitives"][0]["attributes"]["POSITION"])
    np.testing.assert_allclose(positions, mesh.vertices, atol=1e-7)
    with pytest.raises(ValueError, match="up"):
        glb_bytes(mesh, up="x")


def test_skinned_mesh_guards():
    mesh = _mesh()
    with pytest.raises(ValueError, match="weights"):
        SkinnedMesh(mesh.vertices, mesh.faces, mesh.normals, mesh.colours, mesh.joints, mesh.weights[:3],
                    mesh.joint_heads, mesh.parents, mesh.joint_names)
    with pytest.raises(ValueError, match="out of range"):
        SkinnedMesh(mesh.vertices, mesh.faces, mesh.normals, mesh.colours, mesh.joints + 5, mesh.weights,
                    mesh.joint_heads, mesh.parents, mesh.joint_names)
    with pytest.raises(ValueError, match="parent"):
        SkinnedMesh(mesh.vertices, mesh.faces, mesh.normals, mesh.colours, mesh.joints, mesh.weights,
                    mesh.joint_heads, [-1, 2, 1], mesh.joint_names)


def test_srgb_to_linear_known_values():
    np.testing.assert_allclose(srgb_to_linear(np.array([0.0, 0.04045, 0.5, 1.0])),
                               [0.0, 0.04045 / 12.92, 0.2140411, 1.0], atol=1e-6)
