"""neuralbody.recon: a clothed person's surface from a few calibrated images, with one model for everyone.

``views``: crops around the person and their cameras. ``locate``: the person's box from the masks.
``encoder``: a small stacked hourglass. ``model``: PIFu and the multi-view multi-scale implicit
function. ``dataset``: training batches from a corpus (:mod:`neuralbody.data.corpus`). ``train``:
the training loop (``neuralbody train-recon``). ``grid``: coarse-to-fine occupancy grids.
``reconstruct``: a mesh of one frame of a capture (``neuralbody reconstruct``).
"""
