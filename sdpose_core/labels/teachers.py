"""Teacher pose models for pseudo-labelling: YOLO11n-pose and MoveNet Thunder, as plain ONNX.

Both run with onnxruntime only (no Ultralytics, no TensorFlow), so labelling works offline
with the files in ``shared/data/models/``. Tensor formats follow ``shared/data/README.md``:

- ``yolo11n-pose.onnx``: ``images`` float32 [N,3,H,W] RGB 0..1, letterboxed with pad 114,
  H and W multiples of 32 -> ``output0`` [N,56,A] = cx,cy,w,h,score,17x(x,y,score) in input
  pixels; no NMS in the graph (done here with ``cv2.dnn.NMSBoxes``).
- ``movenet-thunder.onnx``: ``input:0`` int32 [1,256,256,3] RGB 0..255 of a square crop ->
  ``Identity:0`` [1,1,17,3] = (y, x, score) normalised to the crop.

Flip test-time augmentation keeps a joint only where the plain and the mirrored pass agree
(`flip_agreement`), trading recall for cleaner labels.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from sdpose_core.errors import UserError
from sdpose_core.geometry import box_iou
from sdpose_core.keypoints import FLIP_INDEX, NUM_KEYPOINTS

__all__ = [
    "YoloPoseTeacher",
    "MoveNetTeacher",
    "TeacherPoses",
    "rotation_about_centre",
    "unturn_points",
    "make_session",
    "flip_agreement",
    "square_crop_boxes",
    "MOVENET_SIZE",
    "DEFAULT_FLIP_AGREE",
]

logger = logging.getLogger(__name__)

MOVENET_SIZE: int = 256
# Two passes agree on a joint when they are within this fraction of the box size sqrt(w*h).
DEFAULT_FLIP_AGREE: float = 0.1
_STRIDE = 32
_PAD_VALUE = 114


def make_session(onnx_path: str | os.PathLike, threads: int | None = None, kind: str = "teacher"):
    """A CPU onnxruntime session; a missing file is a one-line `UserError` saying where to look.

    ``threads`` sets ``intra_op_num_threads`` (None: onnxruntime's default, one per core).
    """
    import onnxruntime as ort

    path = Path(onnx_path)
    if not path.is_file():
        raise UserError(
            f"{kind} model not found: {path} — the files are in shared/data/models/ "
            "(movenet/movenet-thunder.onnx, yolo11n-pose/yolo11n-pose.onnx); pass the path explicitly"
        )
    options = ort.SessionOptions()
    if threads is not None:
        options.intra_op_num_threads = int(threads)
    options.log_severity_level = 3
    try:
        return ort.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own types for corrupt files
        raise UserError(f"cannot load {kind} model {path}: {str(exc).splitlines()[0]}") from None


def _check_input(session, path: str | os.PathLike, name: str, what: str) -> None:
    """Fail early, in one line, when the user passes the other teacher's file."""
    names = [i.name for i in session.get_inputs()]
    if names != [name]:
        raise UserError(f"{path} is not a {what} model (inputs {names}, expected ['{name}'])")


def _box_sizes(boxes_xyxy: np.ndarray) -> np.ndarray:
    """sqrt(w*h) per box: the person scale used for the flip-agreement distance."""
    wh = (boxes_xyxy[:, 2:] - boxes_xyxy[:, :2]).clip(1e-6)
    return np.sqrt(wh[:, 0] * wh[:, 1])


def flip_agreement(
    kpts_a: np.ndarray,
    scores_a: np.ndarray,
    kpts_b: np.ndarray,
    scores_b: np.ndarray,
    box_sizes: np.ndarray,
    max_dist: float = DEFAULT_FLIP_AGREE,
) -> tuple[np.ndarray, np.ndarray]:
    """Combine a plain and a flipped (already un-flipped, pairs swapped) prediction.

    Shapes: kpts (N,17,2), scores (N,17), box_sizes (N,). A joint whose two positions are within
    ``max_dist * box_size`` pixels is kept at their mean position with the mean score; otherwise
    its score becomes 0 (its position is still the mean, but a score of 0 means "drop it").
    Disagreement usually marks a left/right confusion or a guessed, occluded joint.
    """
    kpts_a = np.asarray(kpts_a, dtype=np.float64)
    kpts_b = np.asarray(kpts_b, dtype=np.float64)
    dist = np.linalg.norm(kpts_a - kpts_b, axis=-1)
    limit = max_dist * np.asarray(box_sizes, dtype=np.float64).reshape(-1, 1)
    agree = dist <= limit
    kpts = 0.5 * (kpts_a + kpts_b)
    scores = np.where(agree, 0.5 * (np.asarray(scores_a) + np.asarray(scores_b)), 0.0)
    return kpts, scores


@dataclass(frozen=True)
class TeacherPoses:
    """A top-down teacher's output for N boxes: image-pixel keypoints (N,17,2), scores (N,17),
    and the orientation (degrees) each person was read in (0 without orientation TTA)."""

    keypoints: np.ndarray
    scores: np.ndarray
    orientations: np.ndarray


def rotation_about_centre(angle: float, size: int) -> np.ndarray:
    """(2,3) affine turning a ``size`` x ``size`` image ``angle`` degrees counter-clockwise about
    its centre, in OpenCV's pixel-index convention (so 90-degree turns move whole pixels)."""
    centre = (size - 1) / 2.0
    return cv2.getRotationMatrix2D((centre, centre), float(angle), 1.0)


def unturn_points(xy_norm: np.ndarray, angle: float) -> np.ndarray:
    """Positions (..., 2) normalised to a square crop turned ``angle`` degrees about its centre
    -> the same points in the upright crop (the inverse turn about (0.5, 0.5))."""
    if not angle % 360:
        return np.asarray(xy_norm, dtype=np.float64)
    linear = rotation_about_centre(angle, 2)[:, :2]  # the pure turn (size only moves the centre)
    centred = np.asarray(xy_norm, dtype=np.float64) - 0.5
    return centred @ linear + 0.5  # row vectors times A equal A^T applied: the inverse turn


def square_crop_boxes(boxes_xyxy: np.ndarray, padding: float = 1.25) -> np.ndarray:
    """(N,4) xyxy -> (N,3) (x0, y0, side): the box enlarged by ``padding`` and padded to a square."""
    boxes = np.asarray(boxes_xyxy, dtype=np.float64).reshape(-1, 4)
    centre = 0.5 * (boxes[:, :2] + boxes[:, 2:])
    side = (boxes[:, 2:] - boxes[:, :2]).max(axis=1).clip(1.0) * padding
    return np.column_stack([centre - side[:, None] * 0.5, side])


class YoloPoseTeacher:
    """Ultralytics YOLO11n-pose as ONNX: person boxes and 17 COCO keypoints for a whole image.

    ``teacher(image_bgr) -> (boxes (N,4) xyxy, box_scores (N,), keypoints (N,17,2), kpt_scores (N,17))``
    in image pixels, sorted by box score. The image is letterboxed so its longer side is
    ``imgsz`` and each side is padded (centred, value 114) to the next multiple of 32, as
    Ultralytics' own ``predict`` does; small people need imgsz 960-1280.
    With ``flip_tta`` the mirrored image is also run, people are matched by box IoU >= 0.5,
    and `flip_agreement` keeps only agreeing joints (an unmatched person keeps no joint).
    ``role`` ("teacher" or "detector") only words the missing-file error.
    """

    def __init__(
        self,
        onnx_path: str | os.PathLike,
        imgsz: int = 640,
        conf: float = 0.3,
        iou: float = 0.6,
        threads: int | None = None,
        flip_tta: bool = False,
        flip_agree: float = DEFAULT_FLIP_AGREE,
        max_det: int = 300,
        role: str = "teacher",
    ) -> None:
        if imgsz < _STRIDE:
            raise UserError(f"imgsz must be at least {_STRIDE}, got {imgsz}")
        self.path = Path(onnx_path)
        self.session = make_session(self.path, threads, kind=role)
        _check_input(self.session, self.path, "images", "YOLO pose (yolo11n-pose.onnx)")
        self.imgsz, self.conf, self.iou = int(imgsz), float(conf), float(iou)
        self.flip_tta, self.flip_agree, self.max_det = bool(flip_tta), float(flip_agree), int(max_det)

    def letterbox(self, image_bgr: np.ndarray) -> tuple[np.ndarray, float, tuple[float, float]]:
        """(1,3,H,W) float32 RGB 0..1 input, the resize ratio, and the (left, top) padding."""
        h, w = image_bgr.shape[:2]
        ratio = self.imgsz / max(h, w)
        new_w, new_h = max(1, round(w * ratio)), max(1, round(h * ratio))
        out_w = -(-new_w // _STRIDE) * _STRIDE
        out_h = -(-new_h // _STRIDE) * _STRIDE
        left, top = (out_w - new_w) // 2, (out_h - new_h) // 2
        resized = cv2.resize(image_bgr, (new_w, new_h), interpolation=cv2.INTER_LINEAR)
        canvas = np.full((out_h, out_w, 3), _PAD_VALUE, dtype=np.uint8)
        canvas[top : top + new_h, left : left + new_w] = resized
        blob = canvas[:, :, ::-1].transpose(2, 0, 1)[None].astype(np.float32) / 255.0
        return np.ascontiguousarray(blob), ratio, (float(left), float(top))

    def _run(self, image_bgr: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        blob, ratio, (left, top) = self.letterbox(image_bgr)
        (out,) = self.session.run(None, {"images": blob})
        pred = out[0].T  # (A, 56)
        pred = pred[pred[:, 4] >= self.conf]
        empty = (np.zeros((0, 4)), np.zeros(0), np.zeros((0, NUM_KEYPOINTS, 2)), np.zeros((0, NUM_KEYPOINTS)))
        if len(pred) == 0:
            return empty
        xywh = pred[:, :4].astype(np.float64)
        tl = xywh[:, :2] - 0.5 * xywh[:, 2:]
        keep = cv2.dnn.NMSBoxes(
            np.column_stack([tl, xywh[:, 2:]]).tolist(),
            pred[:, 4].tolist(),
            self.conf,
            self.iou,
            top_k=self.max_det,
        )
        keep = np.asarray(keep, dtype=np.int64).reshape(-1)
        if keep.size == 0:
            return empty
        pred = pred[keep].astype(np.float64)
        pred = pred[np.argsort(-pred[:, 4], kind="stable")]
        h, w = image_bgr.shape[:2]
        offset = np.array([left, top])
        boxes = np.concatenate([pred[:, :2] - 0.5 * pred[:, 2:4], pred[:, :2] + 0.5 * pred[:, 2:4]], axis=1)
        boxes = (boxes.reshape(-1, 2, 2) - offset) / ratio
        boxes[..., 0] = boxes[..., 0].clip(0, w)
        boxes[..., 1] = boxes[..., 1].clip(0, h)
        kpt = pred[:, 5:].reshape(-1, NUM_KEYPOINTS, 3)
        keypoints = (kpt[..., :2] - offset) / ratio
        return boxes.reshape(-1, 4), pred[:, 4], keypoints, kpt[..., 2]

    def __call__(self, image_bgr: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        boxes, box_scores, keypoints, kpt_scores = self._run(image_bgr)
        if not self.flip_tta or len(boxes) == 0:
            return boxes, box_scores, keypoints, kpt_scores
        w = image_bgr.shape[1]
        f_boxes, _, f_kpts, f_scores = self._run(np.ascontiguousarray(image_bgr[:, ::-1]))
        f_boxes = f_boxes[:, [2, 1, 0, 3]] * [-1, 1, -1, 1] + [w, 0, w, 0]
        f_kpts = f_kpts[:, FLIP_INDEX].copy()
        f_kpts[..., 0] = w - f_kpts[..., 0]
        f_scores = f_scores[:, FLIP_INDEX]
        # Greedy IoU matching, highest-scoring originals first (they are sorted already).
        match_kpts = keypoints.copy()
        match_scores = np.zeros_like(kpt_scores)
        if len(f_boxes):
            ious = box_iou(boxes, f_boxes)
            used = np.zeros(len(f_boxes), dtype=bool)
            for i in range(len(boxes)):
                cand = np.where(used, -1.0, ious[i])
                j = int(np.argmax(cand))
                if cand[j] >= 0.5:
                    used[j] = True
                    match_kpts[i], match_scores[i] = f_kpts[j], f_scores[j]
        kpts, scores = flip_agreement(
            keypoints, kpt_scores, match_kpts, match_scores, _box_sizes(boxes), self.flip_agree
        )
        return boxes, box_scores, kpts, scores


class MoveNetTeacher:
    """MoveNet SinglePose Thunder, top-down: ``teacher(image_bgr, boxes_xyxy) -> (keypoints, scores)``.

    Each box is enlarged ``padding`` (1.25, as the README's measurements), cut out and padded
    with black to a square around its centre (as MoveNet's own ``resize_with_pad``), resized to
    256x256 and fed as int32 RGB. Outputs (y, x) in [0,1] map back with
    ``X = x0 + x * side``. Keypoints (N,17,2) are image pixels, scores (N,17) in [0,1].
    With ``flip_tta`` the mirrored crop is run too (x -> 1 - x, left/right swapped with
    FLIP_INDEX) and `flip_agreement` keeps a joint only when the passes agree within
    ``flip_agree`` x sqrt(box w * h); agreeing joints get the mean position and mean score.

    ``orientations`` (degrees, counter-clockwise) is orientation test-time augmentation:
    MoveNet was trained on upright people and fails on inverted and lying ones, so the crop is
    also run turned by each angle (e.g. 0, 90, 180, 270), the joints are turned back, and
    the orientation with the highest mean joint score (after the flip agreement) is kept.
    With ``accept_score`` the angles are tried in the given order and the first one whose mean
    score reaches it is kept without trying the rest (an upright person read with confidence
    needs no turned passes; on 120 pool2 people a threshold of 0.5 never changed the choice).
    """

    def __init__(
        self,
        onnx_path: str | os.PathLike,
        threads: int | None = None,
        flip_tta: bool = False,
        flip_agree: float = DEFAULT_FLIP_AGREE,
        padding: float = 1.25,
        orientations: Sequence[float] = (0.0,),
        accept_score: float | None = None,
    ) -> None:
        self.path = Path(onnx_path)
        self.session = make_session(self.path, threads, kind="teacher")
        _check_input(self.session, self.path, "input:0", "MoveNet Thunder (movenet-thunder.onnx)")
        shape = self.session.get_inputs()[0].shape
        if list(shape) != [1, MOVENET_SIZE, MOVENET_SIZE, 3]:
            raise UserError(f"{self.path}: expected MoveNet Thunder input [1,256,256,3], got {shape}")
        self.flip_tta, self.flip_agree, self.padding = bool(flip_tta), float(flip_agree), float(padding)
        self.orientations = tuple(float(a) for a in orientations)
        if not self.orientations:
            raise UserError("orientations: give at least one angle (0 is the plain pass)")
        self.accept_score = accept_score

    def crop(self, image_bgr: np.ndarray, box_xyxy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(256,256,3) uint8 RGB crop of one box, and its square (x0, y0, side) in image pixels.

        The box enlarged ``padding`` times is cut out and padded with black to a centred square
        (what the README measured): neighbours beside a tall box stay out of the crop.
        """
        square = square_crop_boxes(box_xyxy, self.padding)[0]
        x0, y0, side = (float(v) for v in square)
        s = MOVENET_SIZE / side
        matrix = np.array([[s, 0.0, -x0 * s], [0.0, s, -y0 * s]])
        crop = cv2.warpAffine(image_bgr, matrix, (MOVENET_SIZE, MOVENET_SIZE), flags=cv2.INTER_LINEAR)
        box = np.asarray(box_xyxy, dtype=np.float64).reshape(4)
        half = 0.5 * MOVENET_SIZE * (box[2:] - box[:2]).clip(1e-6) * self.padding / side  # (w/2, h/2)
        lo = np.floor(0.5 * MOVENET_SIZE - half + 0.5).astype(int).clip(0, MOVENET_SIZE)
        hi = np.floor(0.5 * MOVENET_SIZE + half + 0.5).astype(int).clip(0, MOVENET_SIZE)
        crop[:, : lo[0]] = 0
        crop[:, hi[0] :] = 0
        crop[: lo[1]] = 0
        crop[hi[1] :] = 0
        return np.ascontiguousarray(crop[:, :, ::-1]), square

    def _infer(self, crop_rgb: np.ndarray) -> np.ndarray:
        """(17,3) (x, y, score) normalised to the crop."""
        (out,) = self.session.run(None, {"input:0": crop_rgb[None].astype(np.int32)})
        yxs = out.reshape(NUM_KEYPOINTS, 3).astype(np.float64)
        return yxs[:, [1, 0, 2]]

    def _infer_turned(
        self, crop_rgb: np.ndarray, angle: float, box_size: float
    ) -> tuple[np.ndarray, np.ndarray]:
        """The crop turned ``angle`` degrees (counter-clockwise, about its centre): normalised
        (17,2) positions mapped back into the upright crop, and (17,) scores (flip-agreed when
        ``flip_tta``, disagreeing joints 0). ``box_size``: sqrt(w*h) of the box in crop units."""
        turn = rotation_about_centre(angle, MOVENET_SIZE)
        turned = crop_rgb
        if angle % 360:
            turned = cv2.warpAffine(crop_rgb, turn, (MOVENET_SIZE, MOVENET_SIZE), flags=cv2.INTER_LINEAR)
        plain = self._infer(turned)
        xy, scores = plain[:, :2], plain[:, 2]
        if self.flip_tta:
            flipped = self._infer(np.ascontiguousarray(turned[:, ::-1]))[FLIP_INDEX]
            flipped[:, 0] = 1.0 - flipped[:, 0]
            xy, scores = flip_agreement(
                xy[None],
                scores[None],
                flipped[None, :, :2],
                flipped[None, :, 2],
                np.array([box_size]),
                self.flip_agree,
            )
            xy, scores = xy[0], scores[0]
        return unturn_points(xy, angle), scores

    def predict(self, image_bgr: np.ndarray, boxes_xyxy: np.ndarray) -> TeacherPoses:
        """Keypoints, scores and the orientation chosen for each box (see the class docstring)."""
        boxes = np.asarray(boxes_xyxy, dtype=np.float64).reshape(-1, 4)
        n = len(boxes)
        keypoints = np.zeros((n, NUM_KEYPOINTS, 2))
        scores = np.zeros((n, NUM_KEYPOINTS))
        chosen = np.zeros(n)
        for i, box in enumerate(boxes):
            crop, (x0, y0, side) = self.crop(image_bgr, box)
            box_size = float(_box_sizes(box[None])[0]) / side
            best = -1.0
            for angle in self.orientations:
                xy, score = self._infer_turned(crop, angle, box_size)
                if score.mean() > best:  # the orientation the teacher is most sure of
                    best = float(score.mean())
                    keypoints[i] = np.array([x0, y0]) + xy * side
                    scores[i], chosen[i] = score, angle
                if self.accept_score is not None and best >= self.accept_score:
                    break
        return TeacherPoses(keypoints, scores, chosen)

    def __call__(self, image_bgr: np.ndarray, boxes_xyxy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        poses = self.predict(image_bgr, boxes_xyxy)
        return poses.keypoints, poses.scores
