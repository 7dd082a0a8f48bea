"""Training: the recipe (`recipe`: model, data, schedule and evaluation in one YAML), the losses
(`losses`), the loop (`trainer`, with its curves in `curves`) and its command (`train`), and the
packing of a finished run into the app's weights file (`pack_weights`).

Commands: `python -m sdpose_core.training.train` and `python -m sdpose_core.training.pack_weights`.
"""
