"""SDPose core. At the top, what the app imports: `geometry`, `keypoints`, `decode`, `checkpoint`,
`export` and `quantize` (ONNX, int8), `config`, `errors`, `cli` (what every command shares).
Sub-packages: `models/`, `data/` (training samples), `labels/`, `training/`, `evaluation/`.

This package never imports `app/`.
"""
