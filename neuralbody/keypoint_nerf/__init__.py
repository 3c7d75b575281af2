"""KeypointNeRF (seed 003): a generalisable human renderer conditioned on pixel-aligned features
of a few calibrated views and a relative encoding of sparse 3D keypoints (docs/keypoint-nerf.md)."""
