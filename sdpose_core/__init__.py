"""SDPose core: models, geometry, decoding, checkpoints, data, losses, training, evaluation, export.

This package never imports `app/`.
"""
