"""Safe loading of untrusted files: pickled .npy files rebuild numpy data only, torch files weights only.

Each crafted payload would create a marker file if it ran; the tests assert it is refused
with an error naming the file and that the marker does not exist afterwards.
"""

from __future__ import annotations

import io
import os
import pickle
import subprocess

import numpy as np
import pytest
import torch

from fake_zju import make_capture
from neuralbody.io.errors import InputError
from neuralbody.io.safe_load import load_npy, load_npy_object, load_torch, safe_unpickle


class _Payload:
    """Pickles as a call of ``function(*args)``: what a crafted file does."""

    def __init__(self, function, *args) -> None:
        self.function, self.args = function, args

    def __reduce__(self):
        return self.function, self.args


def _payloads(marker):
    command = f"touch {marker}"
    return {
        "os.system": _Payload(os.system, command),
        "builtins.eval": _Payload(eval, f"open({str(marker)!r}, 'w').close()"),
        "builtins.exec": _Payload(exec, f"open({str(marker)!r}, 'w').close()"),
        "subprocess.Popen": _Payload(subprocess.Popen, ["touch", str(marker)]),
    }


def _write_object_npy(path, value, *, protocol: int = 3) -> None:
    """An .npy file as ``np.save`` writes a pickled object: the header of a 0-d object array, then the pickle."""
    with open(path, "wb") as handle:
        np.lib.format.write_array_header_1_0(handle, {"descr": "|O", "fortran_order": False, "shape": ()})
        pickle.dump(value, handle, protocol=protocol)


def _object_array(value) -> np.ndarray:
    array = np.empty((), dtype=object)
    array[()] = value
    return array


def test_fake_zju_annots_and_params_round_trip(tmp_path):
    fake = make_capture(tmp_path / "cap", num_views=3, num_frames=2)
    annots = load_npy_object(fake.root / "annots.npy")
    reference = np.load(fake.root / "annots.npy", allow_pickle=True).item()  # our own file: trusted here
    assert annots.keys() == reference.keys()
    for key in "KDRT":
        for mine, theirs in zip(annots["cams"][key], reference["cams"][key], strict=True):
            np.testing.assert_array_equal(mine, theirs)
    assert [list(f["ims"]) for f in annots["ims"]] == fake.image_relpaths
    params = load_npy_object(fake.root / "params" / "1.npy")
    for key, value in fake.params[1].items():
        np.testing.assert_array_equal(params[key], value)
        assert params[key].dtype == value.dtype


def test_writer_annots_round_trip(tmp_path):
    from neuralbody.data.cameras import Camera
    from neuralbody.data.writer import cameras_to_annots, save_annots

    camera = Camera(K=np.array([[50.0, 0, 20], [0, 50, 16], [0, 0, 1]]), R=np.eye(3), T=np.array([0.1, 0.2, 3.0]),
                    D=np.array([0.1, 0, 0, 0, 0]), width=40, height=32, name="c0", colour_gain=np.array([1.1, 1.0, 0.9]))
    annots = {"cams": cameras_to_annots([camera]), "ims": [{"ims": ["c0/000000.png"]}], "note": None}
    save_annots(tmp_path / "annots.npy", annots)
    back = load_npy_object(tmp_path / "annots.npy")
    np.testing.assert_allclose(back["cams"]["T"][0], np.array([[100.0], [200.0], [3000.0]]))
    np.testing.assert_allclose(back["cams"]["colour_gain"][0], [1.1, 1.0, 0.9])
    assert back["ims"] == [{"ims": ["c0/000000.png"]}] and back["note"] is None


def test_scalars_dtypes_and_containers_rebuild(tmp_path):
    value = {
        "f32": np.float32(1.5), "i64": np.int64(-3), "flag": np.bool_(True), "text": np.str_("x"),
        "complex": 1 + 2j, "tuple": (1, 2.0, None), "set": {3}, "bytes": b"\x00\xff", "dtype": np.dtype("<f4"),
        "strings": np.array(["a/b.jpg", "c"]), "records": np.zeros(2, dtype=[("a", "<f4"), ("b", "<i2")]),
        "objects": np.array([None, {"k": [1]}], dtype=object), "fortran": np.asfortranarray(np.arange(6.0).reshape(2, 3)),
    }  # fmt: skip
    np.save(tmp_path / "v.npy", value, allow_pickle=True)
    back = load_npy_object(tmp_path / "v.npy")
    assert back.keys() == value.keys()
    for key, item in value.items():
        if isinstance(item, np.ndarray):
            assert back[key].dtype == item.dtype and back[key].shape == item.shape
            assert back[key].tolist() == item.tolist()
        else:
            assert back[key] == item and type(back[key]) is type(item)


def test_python2_style_pickle_with_numpy_1_names(tmp_path):
    """Protocol 2 with numpy 1's ``numpy.core`` module names and ``__builtin__`` (as old ZJU-MoCap files)."""
    value = _object_array({"K": np.arange(9.0).reshape(3, 3), "gain": 1 + 1j, "raw": b"ab", "pair": {1, 2}})
    data = pickle.dumps(value, protocol=2)
    legacy = data.replace(b"numpy._core.multiarray\n", b"numpy.core.multiarray\n")
    assert b"numpy.core.multiarray\n" in legacy and b"__builtin__\n" in legacy and b"_codecs\n" in legacy
    back = safe_unpickle(legacy).item()
    np.testing.assert_array_equal(back["K"], np.arange(9.0).reshape(3, 3))
    assert back["gain"] == 1 + 1j and back["raw"] == b"ab" and back["pair"] == {1, 2}


def test_plain_arrays_load_without_pickle(tmp_path):
    np.save(tmp_path / "a.npy", np.arange(12, dtype=np.float32).reshape(4, 3))
    np.testing.assert_array_equal(load_npy(tmp_path / "a.npy"), np.arange(12, dtype=np.float32).reshape(4, 3))
    assert load_npy_object(tmp_path / "a.npy").shape == (4, 3)  # not an object array: the array itself


@pytest.mark.parametrize("name", ["os.system", "builtins.eval", "builtins.exec", "subprocess.Popen"])
@pytest.mark.parametrize("nested", [False, True])
def test_crafted_npy_is_refused_and_does_not_run(tmp_path, name, nested):
    marker = tmp_path / "ran"
    payload = _payloads(marker)[name]
    value = {"cams": {"K": [np.eye(3)]}, "ims": [{"ims": ["a.jpg"], "evil": payload}]} if nested else payload
    path = tmp_path / "annots.npy"
    _write_object_npy(path, _object_array(value))
    with pytest.raises(InputError, match=r"refused to unpickle") as error:
        load_npy_object(path)
    assert str(path) in str(error.value) and "\n" not in str(error.value)
    module = {"os.system": "posix|os|nt", "builtins.eval": "builtins", "builtins.exec": "builtins"}.get(name, "subprocess")
    assert any(m in str(error.value) for m in module.split("|"))
    assert not marker.exists()


def test_crafted_pickle_via_np_save_is_refused(tmp_path):
    """The same payload written by np.save itself (the way a crafted ZJU-style file would be made)."""
    marker = tmp_path / "ran"
    np.save(tmp_path / "params.npy", {"Rh": np.zeros(3), "Th": _payloads(marker)["os.system"]}, allow_pickle=True)
    with pytest.raises(InputError, match="refused"):
        load_npy_object(tmp_path / "params.npy")
    assert not marker.exists()


def test_damaged_npy_files_name_the_file(tmp_path):
    np.save(tmp_path / "good.npy", {"a": np.arange(100.0)}, allow_pickle=True)
    data = (tmp_path / "good.npy").read_bytes()
    cases = {"truncated.npy": data[: len(data) // 2], "empty.npy": b"", "random.npy": os.urandom(300),
             "header_only.npy": data[:128]}  # fmt: skip
    for name, content in cases.items():
        (tmp_path / name).write_bytes(content)
        with pytest.raises(InputError) as error:
            load_npy_object(tmp_path / name)
        assert str(tmp_path / name) in str(error.value) and "\n" not in str(error.value), name
    np.save(tmp_path / "plain.npy", np.arange(1000.0))
    (tmp_path / "plain_cut.npy").write_bytes((tmp_path / "plain.npy").read_bytes()[:500])
    with pytest.raises(InputError, match="plain_cut.npy"):
        load_npy(tmp_path / "plain_cut.npy")
    with pytest.raises(FileNotFoundError):
        load_npy(tmp_path / "missing.npy")


def test_pickle_of_a_non_array_is_refused(tmp_path):
    _write_object_npy(tmp_path / "x.npy", {"not": "an array"})
    with pytest.raises(InputError, match="not a numpy array"):
        load_npy(tmp_path / "x.npy")


# torch files -------------------------------------------------------------------------------
FIX = "do the fix"


def test_torch_payload_of_plain_values_loads(tmp_path):
    payload = {"w": torch.arange(4.0), "rng": np.random.default_rng(3).bit_generator.state, "step": 7,
               "nested": [(1, 2.5, None, "s", True)], "big": 2**100}  # fmt: skip
    torch.save(payload, tmp_path / "ok.pt")
    back = load_torch(tmp_path / "ok.pt", fix=FIX)
    assert torch.equal(back["w"], payload["w"]) and back["rng"] == payload["rng"] and back["big"] == 2**100
    assert back["nested"] == payload["nested"]


def test_crafted_torch_file_is_refused_and_does_not_run(tmp_path):
    marker = tmp_path / "ran"
    for name, payload in _payloads(marker).items():
        path = tmp_path / f"{name}.pt"
        torch.save({"model": {"w": torch.ones(2)}, "step": 1, "extra": payload}, path)
        with pytest.raises(InputError, match="refused to load") as error:
            load_torch(path, fix=FIX)
        message = str(error.value)
        assert str(path) in message and FIX in message and "\n" not in message, name
        assert not marker.exists(), name


def test_damaged_torch_files_name_the_file(tmp_path):
    torch.save({"w": torch.arange(1000.0)}, tmp_path / "good.pt")
    data = (tmp_path / "good.pt").read_bytes()
    for name, content in {"cut.pt": data[: len(data) // 2], "empty.pt": b"", "random.pt": bytes(range(256)) * 3}.items():
        (tmp_path / name).write_bytes(content)
        with pytest.raises(InputError) as error:
            load_torch(tmp_path / name, fix=FIX)
        message = str(error.value)
        assert str(tmp_path / name) in message and "damaged" in message and "\n" not in message, name


def test_numpy_in_a_torch_file_is_refused(tmp_path):
    """Older payload layouts with numpy arrays are refused with the re-save advice, not loaded unsafely."""
    buffer = io.BytesIO()
    torch.save({"state": np.zeros(3)}, buffer)
    (tmp_path / "old.pt").write_bytes(buffer.getvalue())
    with pytest.raises(InputError, match=r"refused to load numpy.*do the fix"):
        load_torch(tmp_path / "old.pt", fix=FIX)


def test_fuzzed_files_end_in_one_line_errors_never_a_traceback(tmp_path):
    """Random bytes, truncations and flipped bytes of real files (fixed seeds): every outcome is a
    load or an InputError naming the file; the unpicklers trip on many exception types inside."""
    buffer = io.BytesIO()
    np.save(buffer, {"cams": {"K": [np.eye(3)] * 2, "T": [np.zeros((3, 1))] * 2}, "ims": [{"ims": ["a/0.jpg"]}] * 3},
            allow_pickle=True)  # fmt: skip
    npy = buffer.getvalue()
    torch.save({"w": torch.arange(50.0), "step": 3}, tmp_path / "good.pt")
    pt = (tmp_path / "good.pt").read_bytes()
    outcomes = {"loaded": 0, "refused": 0}
    for seed in range(400):
        rng = np.random.default_rng(seed)
        for original, loader, name in ((npy, load_npy_object, "f.npy"), (pt, lambda p: load_torch(p, fix=FIX), "f.pt")):
            damaged = bytearray(original)
            if seed % 3 == 0:
                damaged = damaged[: rng.integers(1, len(damaged))]
            elif seed % 3 == 1:
                for _ in range(rng.integers(1, 6)):
                    damaged[rng.integers(0, len(damaged))] = rng.integers(0, 256)
            else:
                damaged = rng.bytes(len(original))
            path = tmp_path / name
            path.write_bytes(bytes(damaged))
            try:
                loader(path)
                outcomes["loaded"] += 1
            except InputError as error:
                assert str(path) in str(error) and "\n" not in str(error)
                outcomes["refused"] += 1
    assert outcomes["refused"] > 600  # most damaged files are refused, none with a traceback
