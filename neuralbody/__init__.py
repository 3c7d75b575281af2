"""neuralbody: photorealistic, animatable 3D humans from a few synchronised cameras.

Layers (each a sub-package): ``body`` (body models), ``data`` (cameras, captures on disk),
``synth`` (synthetic captures), ``geometry`` (Warp queries), ``rendering`` (volume rendering),
``models`` (Neural Body and baselines), ``training``, ``evaluation`` and ``cli``.
"""

__version__ = "0.1.0"
