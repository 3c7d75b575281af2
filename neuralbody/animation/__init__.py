"""neuralbody.animation: playing trained avatars in new motions, and exporting them as rigged meshes.

* :mod:`~neuralbody.animation.motion_file`: the ``.npz`` motion file format;
* :mod:`~neuralbody.animation.sources`: where a motion comes from (procedural, file, capture
  fits) and the posed bodies it gives a run;
* :mod:`~neuralbody.animation.canonical_mesh`: the canonical avatar's surface with colours
  and skinning weights;
* :mod:`~neuralbody.animation.gltf`: a small writer of skinned binary glTF (.glb).
"""
