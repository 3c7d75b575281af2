"""neuralbody.skinning: forward skinning of canonical space and its inversion (SNARF, Fast-SNARF).

* :mod:`~neuralbody.skinning.weight_grid`: skinning weights everywhere in canonical space, a
  learnable voxel grid initialised from a body model's per-vertex weights;
* :mod:`~neuralbody.skinning.forward_skinning`: ``x' = sum_b w_b(x) G_b [x; 1]``, and the
  per-frame field of blended transforms that evaluates it with its Jacobian;
* :mod:`~neuralbody.skinning.initial_guesses`: which bones start the correspondence search;
* :mod:`~neuralbody.skinning.broyden`: batched Broyden root finding, with a slow Newton oracle;
* :mod:`~neuralbody.skinning.implicit_grad`: gradients of the roots by implicit differentiation;
* :mod:`~neuralbody.skinning.trilinear`: dense trilinear interpolation with its gradient.

The deformer that puts these together for models is
:class:`neuralbody.models.skinning_deformer.ForwardSkinningDeformer`.
"""
