"""spconv backend for the submanifold convolutions (CUDA only), same layer API as ours.

:func:`make_conv` returns layers holding their weight in our layout (27, C_in, C_out) (see
:mod:`neuralbody.models.sparse_conv`), so checkpoints are interchangeable between backends.
A submanifold layer runs ``spconv.pytorch.SubMConv3d`` when spconv is importable AND the
features are on CUDA (backend "auto"), else our PyTorch gather-matmul convolution. Strided
layers always use ours (it runs on CUDA too): spconv's stride-2 output set differs from our
``unique(floor(c / 2))`` and the model must not depend on the backend.

spconv keeps weights as (C_out, 3, 3, 3, C_in) with the kernel axes along the index axes
(x, y, z) and cross-correlation like ``conv3d``; ours are permuted into that layout on every
call, so gradients reach our parameter.
"""

from __future__ import annotations

import functools

import torch

from neuralbody.models.sparse_conv import SparseVolume, StridedConv3d, SubmanifoldConv3d


@functools.lru_cache(maxsize=1)
def spconv_module():
    """spconv.pytorch, or None when it cannot be imported."""
    try:
        import spconv.pytorch as spconv  # noqa: PLC0415
    except Exception:  # ImportError, or a CUDA/ABI mismatch raising something else
        return None
    return spconv


def use_spconv(features: torch.Tensor, backend: str) -> bool:
    """True when this call should run spconv: backend "spconv", or "auto" with spconv on CUDA."""
    if backend == "torch" or not features.is_cuda:
        if backend == "spconv" and not features.is_cuda:
            raise ValueError("backend 'spconv' needs CUDA tensors; use backend 'auto' or 'torch' on CPU")
        return False
    available = spconv_module() is not None
    if backend == "spconv" and not available:
        raise ValueError("backend 'spconv' requested but spconv is not importable; pip install spconv-cu120")
    return available


class SpconvSubmanifoldConv3d(SubmanifoldConv3d):
    """:class:`SubmanifoldConv3d` that runs spconv on CUDA when available."""

    def __init__(self, in_channels: int, out_channels: int, *, bias: bool = True, backend: str = "auto") -> None:
        super().__init__(in_channels, out_channels, bias=bias)
        self.backend = backend

    def forward(self, volume: SparseVolume) -> SparseVolume:
        if not use_spconv(volume.features, self.backend):
            return super().forward(volume)
        return volume.replace(spconv_submanifold(volume, self.weight, self.bias))


def spconv_submanifold(volume: SparseVolume, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """Submanifold 3x3x3 conv with spconv. weight: (27, C_in, C_out) ours -> features (N, C_out)."""
    spconv = spconv_module()
    tensor = volume.cache.get("spconv_tensor")
    if tensor is None:
        coords = volume.coords
        indices = torch.cat([torch.zeros_like(coords[:, :1]), coords], dim=1).int().contiguous()
        shape = (coords.max(dim=0).values + 1).tolist()
        tensor = spconv.SparseConvTensor(volume.features, indices, shape, 1)
    else:
        tensor = tensor.replace_feature(volume.features)
    in_channels, out_channels = weight.shape[1], weight.shape[2]
    layer = spconv.SubMConv3d(in_channels, out_channels, 3, bias=False, indice_key=f"subm{volume.stride}")
    layer = layer.to(volume.features.device)
    del layer.weight
    layer.weight = weight.reshape(3, 3, 3, in_channels, out_channels).permute(4, 0, 1, 2, 3).contiguous()
    out = layer(tensor)
    volume.cache["spconv_tensor"] = out
    features = out.features
    return features + bias if bias is not None else features


def make_conv(kind: str, in_channels: int, out_channels: int, *, bias: bool, backend: str) -> torch.nn.Module:
    """A sparse conv layer ("subm" or "down") for the backend "auto", "spconv" or "torch"."""
    if backend not in ("auto", "spconv", "torch"):
        raise ValueError(f"unknown sparse-conv backend {backend!r}; use 'auto', 'spconv' or 'torch'")
    if kind == "subm":
        return SpconvSubmanifoldConv3d(in_channels, out_channels, bias=bias, backend=backend)
    if kind == "down":
        return StridedConv3d(in_channels, out_channels, bias=bias)
    raise ValueError(f"unknown conv kind {kind!r}")
