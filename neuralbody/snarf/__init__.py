"""neuralbody.snarf: animatable occupancy learned from posed meshes (SNARF) and its backward-skinning baseline.

* :mod:`~neuralbody.snarf.posed_meshes`: reading a folder of posed meshes with body poses;
* :mod:`~neuralbody.snarf.subject`, :mod:`~neuralbody.snarf.frame_pose`: the person's body
  model and shape, each frame's pose and body frame;
* :mod:`~neuralbody.snarf.canonical_occupancy`: the canonical occupancy network;
* :mod:`~neuralbody.snarf.forward_model` (SNARF) and :mod:`~neuralbody.snarf.backward_model`
  (the baseline), behind :mod:`~neuralbody.snarf.posed_occupancy`;
* :mod:`~neuralbody.snarf.model_spec`: building the models, new or from a checkpoint;
* :mod:`~neuralbody.snarf.samples`, :mod:`~neuralbody.snarf.training`,
  :mod:`~neuralbody.snarf.run_files`: labelled points, the training loop, run folders;
* :mod:`~neuralbody.snarf.metrics`, :mod:`~neuralbody.snarf.evaluation`: IoU, near-surface
  IoU and Chamfer-L2 against posed ground-truth meshes.

Commands: ``neuralbody snarf DATA --out RUN`` and ``neuralbody snarf-eval RUN --data OTHER``.
"""
