"""neuralbody.fitting: fit the body model to multi-view 2D keypoints (and masks) of a capture.

Pipeline (``neuralbody fit DATA``): per-frame COCO keypoints in every view
(:mod:`~neuralbody.fitting.keypoints` gives the vertex->keypoint regressors) are triangulated
(:mod:`~neuralbody.data.triangulation`), the body's global rotation/translation is
initialised by a Procrustes alignment, then pose (a subset of bones), global transform and,
on a few frames first, shape are optimised against robust reprojection, silhouette and prior
terms (:mod:`~neuralbody.fitting.objectives`, :mod:`~neuralbody.fitting.optimize`);
:mod:`~neuralbody.fitting.report` tabulates residuals and draws overlays;
:mod:`~neuralbody.fitting.writer` writes the fit into the capture in one transaction.

Neural Body Fitting (``nbf_*``): a CNN with the body model inside predicts pose and shape from a
colour-coded part segmentation or an RGB crop (:mod:`~neuralbody.fitting.nbf_parts`,
:mod:`~neuralbody.fitting.nbf_data` synthetic training data, :mod:`~neuralbody.fitting.nbf_network`,
:mod:`~neuralbody.fitting.nbf_train`); :mod:`~neuralbody.fitting.nbf_init` turns its per-view
predictions into the optimisation's starting pose (``neuralbody fit --init nbf``).
"""
