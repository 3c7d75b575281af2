"""The learned, shape-conditioned skinning network: the body model's weights with a learned correction.

gDNA learns one skinning network ``W(x, beta)`` for everyone. Here it starts as the body model's
own weights of the shape ``beta`` (the person's preset grid, :mod:`neuralbody.gdna.shape_skinning`)
and learns a correction of their logits::

    W(x, beta) = softmax_b( log p_b(x, beta) + delta_b(x, beta) )
    delta(x, beta) = MLP([gamma(x - c), beta])            (B outputs, last layer zero at the start)

with ``p(x, beta)`` the trilinear interpolation of the preset grid's node weights (non-negative,
summing to one), ``gamma`` the positional encoding and ``c`` the centre of the canonical box.
At the start ``delta = 0`` and ``softmax(log p) = p / sum_b p_b = p``: the model is exactly the
fixed-skinning one. A canonical point moves by linear blend skinning (Fast-SNARF's grid
precomputation no longer applies: the weights are per point)::

    x' = d(x) = sum_b W_b(x, beta) G_b [x; 1]

Its Jacobian ``J = d x' / d x`` in closed form::

    J = sum_b W_b R_b + sum_b (G_b [x; 1]) (dW_b/dx)^T,   dW_b/dx = W_b (dl_b/dx - sum_c W_c dl_c/dx)
    dl_b/dx = (dp_b/dx) / p_b + d delta_b/dx

(``R_b`` the rotation-and-scale part of ``G_b``, ``l`` the logits; ``dp/dx`` from the trilinear
interpolation, ``d delta/dx`` by forward-mode differentiation of the network, three tangents);
:meth:`LearnedSkinning.skin_with_jacobian_reference` is the slow oracle by autograd.
Correspondences ``x*`` of a posed point ``x'`` are roots of ``d(x) = x'`` found by Broyden's
method from given starts (a warm start, the previous candidates, or the rigid guesses of the
bones, :mod:`neuralbody.skinning.initial_guesses`), the inverse Jacobian started at the inverse
of ``sum_b W_b(x_0) R_b`` (as :mod:`neuralbody.models.skinning_deformer` does); a root is usable
when it converged and lies in the preset grid's box. With gradients on, the roots carry SNARF's implicit gradient into the
network's parameters theta (:func:`neuralbody.skinning.implicit_grad.implicit_root`)::

    d x* / d theta = -J^{-1} d d(x*) / d theta

SNARF's regulariser keeps the weights at the body's own surface those of the body model:
``L_skin = mean_v sum_b (W_b(v) - p_b(v))^2`` over rest vertices ``v``.

Canonical: the person's rest pose, metres; posed: the frame of the bone transforms.
"""

from __future__ import annotations

import dataclasses

import torch

from neuralbody.models.encoding import encoded_size, positional_encoding
from neuralbody.skinning.broyden import broyden
from neuralbody.skinning.forward_skinning import check_bone_transforms, invert_jacobians, skin_points
from neuralbody.skinning.implicit_grad import implicit_root
from neuralbody.skinning.trilinear import check_grid, trilinear

TINY_WEIGHT = 1e-30  # floor of a preset weight before its log (the preset grid's weights are >= ~1e-6)


@dataclasses.dataclass(frozen=True)
class SkinningOptions:
    """Size of the skinning correction network.

    Attributes:
        bones: B, the skeleton's bones (outputs).
        hidden: width of the hidden layers.
        layers: hidden layers (>= 1).
        freqs: positional-encoding frequencies of the point.
        shape_dim: width of ``beta``.
    """

    bones: int
    hidden: int = 64
    layers: int = 2
    freqs: int = 4
    shape_dim: int = 6

    def __post_init__(self) -> None:
        if min(self.bones, self.hidden, self.layers, self.shape_dim) < 1 or self.freqs < 0:
            raise ValueError(f"SkinningOptions: bones, hidden, layers, shape_dim >= 1 and freqs >= 0; got {self}")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


class SkinningCorrection(torch.nn.Module):
    """``delta(x, beta)`` of the module docstring: (N, B) logit corrections; zero until trained.

    Args:
        centre: (3,) canonical centre ``c`` of the encoding, metres.
        options: network size.
    """

    def __init__(self, centre: torch.Tensor, options: SkinningOptions) -> None:
        super().__init__()
        centre = torch.as_tensor(centre, dtype=torch.float32)
        if centre.shape != (3,):
            raise ValueError(f"SkinningCorrection: centre must be (3,), got {tuple(centre.shape)}")
        self.options = options
        self.register_buffer("centre", centre)
        width = encoded_size(3, options.freqs) + options.shape_dim
        self.layers = torch.nn.ModuleList()
        for _ in range(options.layers):
            self.layers.append(torch.nn.Linear(width, options.hidden))
            width = options.hidden
        self.out = torch.nn.Linear(width, options.bones)
        torch.nn.init.zeros_(self.out.weight)
        torch.nn.init.zeros_(self.out.bias)

    def forward(self, points: torch.Tensor, shapes: torch.Tensor) -> torch.Tensor:
        """(N, B) corrections at canonical points (N, 3), metres, for body shapes ``shapes`` (S,) or (N, S)."""
        if points.ndim != 2 or points.shape[1] != 3:
            raise ValueError(f"SkinningCorrection: points must be (N, 3), got {tuple(points.shape)}")
        hidden = torch.cat([positional_encoding(points - self.centre.to(points.dtype), self.options.freqs),
                            _shape_rows(shapes, len(points), self.options.shape_dim).to(points.dtype)], dim=1)
        for layer in self.layers:
            hidden = torch.relu(layer(hidden))
        return self.out(hidden)

    def with_slopes(self, points: torch.Tensor, shapes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(delta (N, B), d delta / d x (N, B, 3) per metre) at canonical points (N, 3), forward mode by hand.

        The encoding's slope is diagonal per band (``d sin(f v_d) / d v_d = f cos(f v_d)``, the cosine's
        ``-f sin(f v_d)``); each layer carries it as ``W dh`` masked by the ReLU.
        """
        delta = self(points, shapes)
        count, values = points.shape[0], points - self.centre.to(points.dtype)
        eye = torch.eye(3, dtype=points.dtype, device=points.device)
        freqs = 2.0 ** torch.arange(self.options.freqs, dtype=points.dtype, device=points.device)
        scaled = values[:, None, :] * freqs[None, :, None]  # (N, L, 3)
        bands = torch.stack([freqs[None, :, None] * torch.cos(scaled), -freqs[None, :, None] * torch.sin(scaled)], dim=2)
        tangent = torch.cat([eye.expand(count, 3, 3), (bands[..., None] * eye).reshape(count, -1, 3),
                             points.new_zeros(count, self.options.shape_dim, 3)], dim=1)  # (N, E, 3)
        hidden = torch.cat([positional_encoding(values, self.options.freqs),
                            _shape_rows(shapes, count, self.options.shape_dim).to(points.dtype)], dim=1)
        for layer in self.layers:
            before = layer(hidden)
            tangent = torch.einsum("oi,nij->noj", layer.weight, tangent) * (before > 0)[:, :, None]
            hidden = torch.relu(before)
        return delta, torch.einsum("oi,nij->noj", self.out.weight, tangent)


def _shape_rows(shapes: torch.Tensor, count: int, width: int) -> torch.Tensor:
    """(count, width) body shapes from (width,) (repeated) or (count, width)."""
    if shapes.shape == (width,):
        return shapes[None].expand(count, width)
    if shapes.shape != (count, width):
        raise ValueError(f"SkinningCorrection: shapes must be ({width},) or ({count}, {width}), got {tuple(shapes.shape)}")
    return shapes


@dataclasses.dataclass
class PresetWeights:
    """The body model's weights of one shape on a canonical grid.

    Attributes:
        node_weights: (X, Y, Z, B) weights at the nodes (non-negative, summing to one).
        origin: (3,) canonical position of node (0, 0, 0), metres.
        spacing: (3,) metres between nodes.
    """

    node_weights: torch.Tensor
    origin: torch.Tensor
    spacing: torch.Tensor

    def __post_init__(self) -> None:
        check_grid(self.node_weights, "PresetWeights")
        if self.origin.shape != (3,) or self.spacing.shape != (3,):
            raise ValueError(f"PresetWeights: origin and spacing must be (3,), got {tuple(self.origin.shape)}, "
                             f"{tuple(self.spacing.shape)}")

    @property
    def box_max(self) -> torch.Tensor:
        """(3,) canonical position of the last node, metres."""
        count = torch.tensor(self.node_weights.shape[:3], dtype=self.origin.dtype, device=self.origin.device)
        return self.origin + (count - 1) * self.spacing

    def at(self, points: torch.Tensor) -> torch.Tensor:
        """(N, B) preset weights ``p`` at canonical points (N, 3), metres (differentiable in the points)."""
        coords = (points - self.origin.to(points.dtype)) / self.spacing.to(points.dtype)
        return trilinear(self.node_weights.to(points.dtype), coords).values

    def with_slopes(self, points: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(p (N, B), dp / dx (N, B, 3) per metre) at canonical points (N, 3)."""
        spacing = self.spacing.to(points.dtype)
        sample = trilinear(self.node_weights.to(points.dtype), (points - self.origin.to(points.dtype)) / spacing,
                           with_gradient=True)
        return sample.values, sample.gradient / spacing


@dataclasses.dataclass
class LearnedSkinning:
    """The learned skinning of one person: preset weights, their correction network and the body shape.

    Attributes:
        preset: the person's preset weights.
        correction: the shared correction network.
        shapes: (S,) the person's body shape ``beta``.
    """

    preset: PresetWeights
    correction: SkinningCorrection
    shapes: torch.Tensor

    def parameters(self) -> tuple[torch.Tensor, ...]:
        """The correction network's parameters theta, in ``named_parameters`` order."""
        return tuple(p for _, p in self.correction.named_parameters())

    def weights(self, points: torch.Tensor, params: tuple[torch.Tensor, ...] | None = None) -> torch.Tensor:
        """(N, B) ``W(x, beta)`` at canonical points (N, 3); ``params`` replace the network's own (implicit grads)."""
        if params is None:
            delta = self.correction(points, self.shapes)
        else:
            names = [name for name, _ in self.correction.named_parameters()]
            delta = torch.func.functional_call(self.correction, dict(zip(names, params)), (points, self.shapes))
        logits = torch.log(self.preset.at(points).clamp_min(TINY_WEIGHT)) + delta.to(points.dtype)
        return torch.softmax(logits, dim=1)

    def skin(self, points: torch.Tensor, bone_transforms: torch.Tensor,
             params: tuple[torch.Tensor, ...] | None = None) -> torch.Tensor:
        """(N, 3) posed points ``d(x)`` of canonical points (N, 3) by bone transforms (B, 4, 4)."""
        check_bone_transforms(bone_transforms, "LearnedSkinning.skin", self.preset.node_weights.shape[3])
        return skin_points(points, self.weights(points, params), bone_transforms.to(points.dtype))

    def skin_with_jacobian(self, points: torch.Tensor, bone_transforms: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(posed (N, 3), J (N, 3, 3)) at canonical points (N, 3), closed form (module docstring); no gradients."""
        check_bone_transforms(bone_transforms, "LearnedSkinning.skin_with_jacobian", self.preset.node_weights.shape[3])
        with torch.no_grad():
            x = points.detach()
            preset, preset_slopes = self.preset.with_slopes(x)
            delta, delta_slopes = self.correction.with_slopes(x, self.shapes)
            safe = preset.clamp_min(TINY_WEIGHT)
            weights = torch.softmax(torch.log(safe) + delta.to(x.dtype), dim=1)  # (N, B)
            slopes = preset_slopes / safe[:, :, None] + delta_slopes.to(x.dtype)  # (N, B, 3) dl/dx
            weight_slopes = weights[:, :, None] * (slopes - (weights[:, :, None] * slopes).sum(dim=1, keepdim=True))
            transforms = bone_transforms.to(x.dtype)
            moved = torch.einsum("bij,nj->nbi", transforms[:, :3, :3], x) + transforms[None, :, :3, 3]  # (N, B, 3)
            posed = torch.einsum("nb,nbi->ni", weights, moved)
            jacobian = (torch.einsum("nb,bij->nij", weights, transforms[:, :3, :3])
                        + torch.einsum("nbi,nbj->nij", moved, weight_slopes))
        return posed, jacobian

    def skin_with_jacobian_reference(self, points: torch.Tensor,
                                     bone_transforms: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Slow oracle of :meth:`skin_with_jacobian`: J by autograd, three vector-Jacobian products."""
        with torch.enable_grad():
            x = points.detach().requires_grad_(True)
            posed = self.skin(x, bone_transforms)
            rows = [torch.autograd.grad(posed[:, i].sum(), x, retain_graph=i < 2)[0] for i in range(3)]
        return posed.detach(), torch.stack(rows, dim=1)

    def search(self, posed: torch.Tensor, starts: torch.Tensor, bone_transforms: torch.Tensor, *,
               tolerance: float = 1e-5, max_iterations: int = 20, max_step: float = 0.1) -> tuple[torch.Tensor, torch.Tensor]:
        """Roots of ``d(x) = x'`` for posed points (M, 3) from starts (M, 3) (module docstring).

        Returns:
            roots: (M, 3) canonical, metres; carrying implicit gradients into the network's parameters (and
                the posed points) when gradients are enabled and the network requires them.
            usable: (M,) bool, converged inside the preset grid's box.
        """
        if posed.ndim != 2 or posed.shape[1] != 3 or starts.shape != posed.shape:
            raise ValueError(f"LearnedSkinning.search: posed and starts must both be (M, 3), got "
                             f"{tuple(posed.shape)}, {tuple(starts.shape)}")
        targets = posed.detach()
        with torch.no_grad():
            rotation = torch.einsum("nb,bij->nij", self.weights(starts.detach()),
                                    bone_transforms.to(starts.dtype)[:, :3, :3])  # sum_b W_b R_b at the starts
            result = broyden(lambda x, rows: self.skin(x, bone_transforms) - targets[rows], starts.detach(),
                             invert_jacobians(rotation)[0], tolerance=tolerance, max_iterations=max_iterations,
                             max_step=max_step)
        inside = ((result.solution >= self.preset.origin) & (result.solution <= self.preset.box_max)).all(dim=1)
        usable = result.converged & inside
        params = self.parameters()
        if not torch.is_grad_enabled() or not (posed.requires_grad or any(p.requires_grad for p in params)):
            return result.solution, usable
        _, jacobian = self.skin_with_jacobian(result.solution, bone_transforms)
        roots = implicit_root(lambda x, *theta: self.skin(x, bone_transforms, theta), result.solution, posed, jacobian,
                              params, usable=usable)
        return roots, usable

    def regulariser(self, points: torch.Tensor) -> torch.Tensor:
        """``mean sum_b (W_b - p_b)^2`` at canonical points (N, 3) (the body's surface: module docstring)."""
        return (self.weights(points) - self.preset.at(points)).square().sum(dim=1).mean()
