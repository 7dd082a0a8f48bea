"""The data pipeline's settings (`DataConfig`, the recipe's ``data:`` section), apart from the
dataset and augmentation that read them, as `sdpose_core.models.config` is for the model."""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["DataConfig"]


@dataclass
class DataConfig:
    """Data pipeline settings; the ``data:`` section of ``configs/<variant>.yaml`` maps onto it.

    Defaults are SDPose's MMPose 0.29 training config. Sizes are (w, h),
    as in `sdpose_core.geometry`.
    """

    image_size: tuple[int, int] = (192, 256)
    heatmap_size: tuple[int, int] = (48, 64)
    sigma: float = 2.0
    # Coarse-to-fine targets for short schedules: ((first_epoch, sigma), ...), 0-based epochs.
    # Empty (the paper's recipe) means `sigma` throughout; before the first entry, `sigma` too.
    sigma_schedule: tuple[tuple[int, float], ...] = ()
    unbiased_encoding: bool = True
    padding: float = 1.25
    shift_prob: float = 0.3
    shift_factor: float = 0.16
    flip_prob: float = 0.5
    half_body_prob: float = 0.3
    half_body_min_joints: int = 8
    half_body_padding: float = 1.5
    scale_factor: float = 0.35
    rot_factor: float = 45.0
    rot_prob: float = 0.6
    # Not in SDPose's recipe (0 = off): chance that a crop's rotation is drawn from the whole
    # circle instead (`augment.random_turn`), for people upside down or lying: a quarter of the
    # LSPET validation athletes have their torso turned past 90 degrees.
    turn_prob: float = 0.0
    use_udp: bool = False
    # Not in SDPose's recipe (0 = off): chance of colour/blur jitter per training crop, for small
    # or narrow training sets (see `augment.random_photometric`).
    photometric_prob: float = 0.0
    # Of the jittered crops, the share turned grey (`augment.random_photometric`'s gray_prob).
    photometric_gray_prob: float = 0.1
    # Not in SDPose's recipe (0 = off), for the same kind of set: chance of a painted rectangle
    # over the crop (joints keep labels) and of the crop cut off past a line as a frame's edge
    # would (joints there unlabelled); see `augment.random_occlusion` / `random_truncation`.
    occlusion_prob: float = 0.0
    truncation_prob: float = 0.0
    # Not in SDPose's recipe (0 = off): chance that a rotated whole-body crop is re-boxed around
    # the turned person (`augment.refit_rotated_box`), so turned people come in the wide boxes
    # seated, crouched and lying people get from a detector.
    rotation_refit_prob: float = 0.0
    # Not in SDPose's recipe (0 = off): chance that a crop is zoomed out by a factor drawn from
    # [1.5, zoom_out_max] around the person (`augment.random_zoom_out`), so people who fill only
    # part of their box (a loose or whole-image box, a box carried between detections) are
    # still found; the area past the source image is black, as at a frame's edge.
    zoom_out_prob: float = 0.0
    zoom_out_max: float = 3.0
    # Not in SDPose's recipe (0 = off): chance that a person whose annotation carries a
    # ``detector_bbox`` (`sdpose_core.labels.detector_boxes`: the person detector's box for an
    # athlete whose own box is their joints' extent) is cropped from that box instead, so the
    # model also learns to read people framed as the app's detector frames them.
    detector_box_prob: float = 0.0
    # Not in SDPose's recipe (1 = off): passes over the training people per epoch. A small set on
    # a fast GPU finishes an epoch in seconds, and the per-epoch costs (checkpoint, loader
    # restart) would then dominate; each repeat draws its own augmentation.
    repeats: int = 1
    # Not in SDPose's recipe (empty = off): extra passes per epoch over the people of a named
    # annotation ``source`` (pseudo_label writes "movenet" / "lsp-human"), e.g. {"lsp-human": 3}
    # lists each human-labelled person three times, to weigh scarce, varied labels above a large,
    # narrow pseudo-labelled pool. Each copy draws its own augmentation.
    source_repeats: dict[str, int] = field(default_factory=dict)
    # Not in SDPose's recipe (0 = off): soft targets from the teacher's own heatmap on the very
    # crop the student sees (`teacher_targets.TeacherHeatmaps`), for the joints of
    # teacher-labelled people (``teacher_heatmap_sources``) that carry no hard label, with this
    # target weight. ``teacher_model`` is MoveNet Thunder's ONNX (empty: shared/data/models).
    teacher_heatmap_weight: float = 0.0
    teacher_heatmap_sources: tuple[str, ...] = ("movenet",)
    teacher_model: str = ""

    def __post_init__(self) -> None:
        for name in (
            "shift_prob",
            "flip_prob",
            "half_body_prob",
            "rot_prob",
            "turn_prob",
            "photometric_prob",
            "photometric_gray_prob",
            "occlusion_prob",
            "truncation_prob",
            "rotation_refit_prob",
            "zoom_out_prob",
            "detector_box_prob",
        ):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {getattr(self, name)}")
        if min(*self.image_size, *self.heatmap_size) <= 0 or self.sigma <= 0 or self.padding <= 0:
            raise ValueError("image_size, heatmap_size, sigma and padding must be positive")
        if self.repeats < 1:
            raise ValueError(f"repeats must be at least 1, got {self.repeats}")
        bad = {k: v for k, v in self.source_repeats.items() if type(v) is not int or v < 1}
        if bad:
            raise ValueError(f"source_repeats must map source names to integers >= 1, got {bad}")
        if self.zoom_out_max < 1.5:
            raise ValueError(f"zoom_out_max must be at least 1.5, got {self.zoom_out_max}")
        if not 0.0 <= self.scale_factor < 1.0:
            raise ValueError(f"scale_factor must be in [0, 1), got {self.scale_factor}")
        if self.use_udp:
            raise ValueError("use_udp is not supported: SDPose trains and tests without UDP")
        if self.teacher_heatmap_weight < 0:
            raise ValueError(f"teacher_heatmap_weight must be >= 0, got {self.teacher_heatmap_weight}")
        if self.teacher_heatmap_weight and (tuple(self.image_size), tuple(self.heatmap_size)) != (
            (192, 256),
            (48, 64),
        ):
            raise ValueError("teacher heatmap targets need image_size [192, 256] and heatmap_size [48, 64]")
        starts = [int(start) for start, _ in self.sigma_schedule]
        if starts != sorted(set(starts)) or any(sigma <= 0 for _, sigma in self.sigma_schedule):
            raise ValueError("sigma_schedule needs increasing first epochs and positive sigmas")

    def sigma_at(self, epoch: int) -> float:
        """The target Gaussian's sigma in the 0-based ``epoch`` (see ``sigma_schedule``)."""
        sigma = self.sigma
        for start, value in self.sigma_schedule:
            if epoch >= start:
                sigma = value
        return float(sigma)

    @property
    def aspect_ratio(self) -> float:
        """Crop width / height (0.75): the aspect every box is widened to."""
        return self.image_size[0] / self.image_size[1]
