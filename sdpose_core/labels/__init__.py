"""Training labels: teachers that label people (`teachers`: MoveNet, YOLO-pose), the labelling
command (`pseudo_label`), human-labelled sets read into the same COCO format (`lsp`,
`coco_labels`), the teacher's soft heatmaps for a training crop (`teacher_targets`) and the
compact, pre-cropped copy of a labelled set (`compact_dataset`).

Commands: `python -m sdpose_core.labels.pseudo_label`, `python -m sdpose_core.labels.lsp` and
`python -m sdpose_core.labels.compact_dataset`.
"""
