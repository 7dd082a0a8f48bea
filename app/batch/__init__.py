"""Batch processing on Ray: many videos or image folders, one task each, with nothing lost or done twice.

* `inputs`: which videos and image folders `--inputs` names, and each one's output path.
* `outputs`: temporary names, atomic renames, clean-up of what dead attempts left.
* `manifest`: `OUT/manifest.json`, one row per input (`ManifestRow`).
* `models`: model files checked and exported once, sent through Ray's object store.
* `task`: the Ray task, one input through the app's own pipeline and writers.
* `progress`: the actor running tasks post their progress to.
* `runner`: the driver loop; `cluster`: local Ray or a cluster; `cli`: `python main.py batch`.
"""
