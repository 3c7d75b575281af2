"""LPIPS (Zhang et al. 2018), only where it can run offline; otherwise skipped with one notice.

LPIPS compares deep features of the two images: ``d = sum_l mean_hw |w_l * (f_l(x) - f_l(y))|^2``
with unit-normalised backbone activations ``f_l`` and learned channel weights ``w_l``. The
``lpips`` package ships the weights ``w_l``, but builds its backbone (AlexNet by default) from
torchvision, which downloads the ImageNet weights into ``<torch.hub.get_dir()>/checkpoints``
on first use. To guarantee no network access, :func:`load_lpips` checks that those files are
already on disk *before* constructing anything, and otherwise returns None and logs one notice
saying how to enable the metric. Lower is better; 0 for identical images.
"""

from __future__ import annotations

import functools
import importlib
import logging
from pathlib import Path

import numpy as np
import torch

logger = logging.getLogger(__name__)

BACKBONE_FILES = {
    "alex": "alexnet-owt-7be5be79.pth",
    "vgg": "vgg16-397923af.pth",
    "squeeze": "squeezenet1_1-b8a52dc0.pth",
}
"""torchvision checkpoint file names (ImageNet weights) the ``lpips`` package loads for each backbone."""


def backbone_checkpoint_path(net: str = "alex") -> Path:
    """Where torchvision looks for (and would download) the backbone weights of ``net``."""
    if net not in BACKBONE_FILES:
        raise ValueError(f"LPIPS backbone must be one of {sorted(BACKBONE_FILES)}, got {net!r}")
    return Path(torch.hub.get_dir()) / "checkpoints" / BACKBONE_FILES[net]


def lpips_unavailable_reason(net: str = "alex") -> str | None:
    """Why LPIPS with backbone ``net`` cannot run offline here, or None when it can. Never downloads."""
    checkpoint = backbone_checkpoint_path(net)
    try:
        lpips_package = importlib.import_module("lpips")
        importlib.import_module("torchvision")
    except ImportError as error:
        return f"{error}; install `pip install lpips` (it brings torchvision) and place the weights at {checkpoint}"
    package_dir = Path(getattr(lpips_package, "__file__", "") or ".").parent
    linear_weights = package_dir / "weights" / "v0.1" / f"{net}.pth"
    if not linear_weights.is_file():
        return f"the lpips package has no linear-layer weights at {linear_weights}; reinstall it with `pip install lpips`"
    if not checkpoint.is_file():
        return (
            f"the {net} backbone weights are not on this machine; place {BACKBONE_FILES[net]} at {checkpoint} "
            "(torchvision's ImageNet weights; set TORCH_HOME to use another folder)"
        )
    return None


@functools.lru_cache(maxsize=None)
def _log_skip_notice(reason: str) -> None:
    """Log the skip notice; cached so that each distinct reason is logged once per process."""
    logger.warning("LPIPS skipped: %s", reason)


class LpipsMetric:
    """A loaded LPIPS network. Call it on two (H, W, 3) images in [0, 1] to get a float (lower is better)."""

    def __init__(self, network: torch.nn.Module, device: torch.device) -> None:
        self.network = network
        self.device = device

    @torch.no_grad()
    def __call__(self, pred, gt) -> float:
        """LPIPS distance between pred (H, W, 3) and gt (H, W, 3), both RGB in [0, 1]."""
        images = []
        for name, image in (("pred", pred), ("gt", gt)):
            tensor = image if isinstance(image, torch.Tensor) else torch.as_tensor(np.asarray(image))
            if tensor.ndim != 3 or tensor.shape[2] != 3:
                raise ValueError(f"LPIPS: {name} must be an (H, W, 3) RGB image in [0, 1], got shape {tuple(tensor.shape)}")
            images.append(tensor.detach().to(device=self.device, dtype=torch.float32).permute(2, 0, 1)[None])
        if images[0].shape != images[1].shape:
            raise ValueError(f"LPIPS: pred and gt differ in shape: {tuple(pred.shape)} vs {tuple(gt.shape)}")
        return float(self.network(images[0], images[1], normalize=True).mean())


@functools.lru_cache(maxsize=4)
def _load_network(net: str, device: str) -> LpipsMetric:
    import lpips  # noqa: PLC0415 - optional dependency, checked by lpips_unavailable_reason

    network = lpips.LPIPS(net=net, verbose=False).to(device).eval()
    return LpipsMetric(network, torch.device(device))


def load_lpips(net: str = "alex", *, device: torch.device | str = "cpu") -> LpipsMetric | None:
    """The LPIPS metric with backbone ``net`` on ``device``, or None (one logged notice) when unavailable offline.

    The network is loaded once per process and device; nothing is ever downloaded.
    """
    reason = lpips_unavailable_reason(net)
    if reason is not None:
        _log_skip_notice(reason)
        return None
    return _load_network(net, str(torch.device(device)))


def lpips_distance(pred, gt, *, net: str = "alex") -> float | None:
    """LPIPS between pred (H, W, 3) and gt (H, W, 3) in [0, 1], on their device; None when unavailable."""
    device = pred.device if isinstance(pred, torch.Tensor) else torch.device("cpu")
    metric = load_lpips(net, device=device)
    return None if metric is None else metric(pred, gt)
