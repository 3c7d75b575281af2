"""neuralbody.gdna: a generative model of clothed, animatable people (gDNA, seed 001 "Human Generation").

* :mod:`~neuralbody.gdna.shape_skinning`: the multi-subject skinning, conditioned on body shape;
* :mod:`~neuralbody.gdna.scans`, :mod:`~neuralbody.gdna.correspondences`: the corpus's posed
  meshes as scans, their labelled points carried to canonical space by forward skinning;
* :mod:`~neuralbody.gdna.coarse`, :mod:`~neuralbody.gdna.detail`, :mod:`~neuralbody.gdna.colour`,
  :mod:`~neuralbody.gdna.latents`: the coarse shape network ``O(x, z_shape, beta) -> (o, f)``, the
  detail network ``N(x, z_detail, f) -> n``, the colour network ``C(x, z_colour, f) -> rgb``, the
  per-scan latent codes and their fitted distribution;
* :mod:`~neuralbody.gdna.scan_colours`: a coloured scan's colour at any point, the colour error;
* :mod:`~neuralbody.gdna.losses`, :mod:`~neuralbody.gdna.training`, :mod:`~neuralbody.gdna.run_files`:
  the two training stages, checkpoints and resume, torchrun data parallelism;
* :mod:`~neuralbody.gdna.meshing`, :mod:`~neuralbody.gdna.normal_render`, :mod:`~neuralbody.gdna.generate`:
  new people as meshes with normals and colours, in canonical pose and in a motion, normal and
  colour renders;
* :mod:`~neuralbody.gdna.fitting`: latents fitted to a new posed scan (optionally with a per-scan
  fine-tune of the networks);
* :mod:`~neuralbody.gdna.gen_metrics`: coverage, minimum matching distance, 1-NNA over Chamfer.

Commands: ``neuralbody train-gen``, ``neuralbody generate``, ``neuralbody fit-scan`` (docs/gdna.md).
"""
