"""neuralbody.head: head avatars from a monocular video (IMAvatar, seed 001) on Anny's face.

* :mod:`~neuralbody.head.rig`: a four-bone head rig with Anny's 52 facial actions (the FLAME stand-in);
* :mod:`~neuralbody.head.sequences`, :mod:`~neuralbody.head.camera_path`, :mod:`~neuralbody.head.appearance`,
  :mod:`~neuralbody.head.mesh_render`, :mod:`~neuralbody.head.synth`: synthetic head videos with ground truth;
* :mod:`~neuralbody.head.capture`: their layout and reader; :mod:`~neuralbody.head.animation`: parameter files;
* :mod:`~neuralbody.head.deformation`, :mod:`~neuralbody.head.deformer`: ``x_d = LBS(x_c + E psi + P theta)``
  and its inversion by root finding with implicit gradients;
* :mod:`~neuralbody.head.avatar`: IMAvatar and the nerf-expr baseline; :mod:`~neuralbody.head.raymarch`,
  :mod:`~neuralbody.head.occupancy`: rendering; :mod:`~neuralbody.head.training`,
  :mod:`~neuralbody.head.evaluation`: training runs and scores;
* :mod:`~neuralbody.head.face_mesh`, :mod:`~neuralbody.head.landmark_map`, :mod:`~neuralbody.head.track_fit`,
  :mod:`~neuralbody.head.track_capture`, :mod:`~neuralbody.head.tracking`: a real video tracked (MediaPipe face
  mesh, fitted by Anny's head) into a head capture; :mod:`~neuralbody.head.track_eval`: its scores against truth.
"""
