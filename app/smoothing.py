"""Per-track keypoint smoothers: constant-velocity Kalman (filterpy), One-Euro, or none.

Why here and not in the tracker: the GUI and offline tools want to swap the filter or turn its
`strength` live without touching association. All smoothers share three rules:

* time steps come from frame timestamps in seconds, never from frame counts (the mmpose#1176 bug);
* a joint scored below `min_score` does not update the filter (predict / hold only), so a
  low-confidence outlier cannot drag the track;
* a joint unseen for longer than `joint_timeout_s`, or never seen, re-initialises on its next
  confident observation instead of being pulled from a stale state.

Noise levels are expressed as fractions of the person's size (the extent of its confident
keypoints), so the same settings behave alike on a 60 px pedestrian and a 400 px close-up.
"""

from __future__ import annotations

import logging
import math
from abc import ABC, abstractmethod
from dataclasses import dataclass, replace
from typing import Literal, get_args

import numpy as np
from filterpy.common import Q_discrete_white_noise
from filterpy.kalman import KalmanFilter

__all__ = [
    "SmoothingKind",
    "SmoothingConfig",
    "KeypointSmoother",
    "NoSmoother",
    "KalmanSmoother",
    "OneEuroSmoother",
    "SMOOTHERS",
    "SMOOTHING_KINDS",
    "make_smoother",
    "switch_smoother",
    "strength_gain",
]

log = logging.getLogger(__name__)

SmoothingKind = Literal["kalman", "oneeuro", "none"]
SMOOTHING_KINDS: tuple[str, ...] = get_args(SmoothingKind)
NUM_JOINTS = 17
_MIN_SCALE = 1.0  # pixels; guards against a degenerate (single-point) person
_MAX_DT = 1.0  # seconds; a longer step is treated as this, so covariances stay bounded
_TIME_TOLERANCE = 1e-6  # seconds; time differences closer than this to a limit count as equal


@dataclass
class SmoothingConfig:
    """Smoother settings; the `smoothing:` block of `configs/tracker.yaml`.

    Attributes:
        kind: which filter `make_smoother` builds.
        strength: 0 = light, 0.5 = the parameters below as given, 1 = heavy. See `strength_gain`.
        min_score: joints scored below this are predicted (Kalman) or held (One-Euro), not fed in.
        joint_timeout_s: a joint unseen this long restarts from its next confident observation.
        kalman_meas_std: measurement noise std at confidence 1, as a fraction of person size;
            it grows as 1/sqrt(confidence).
        kalman_accel_std: process noise (white acceleration) std, in person sizes per s^2.
        kalman_init_vel_std: velocity std of a freshly initialised joint, person sizes per s.
        oneeuro_min_cutoff: One-Euro cutoff at rest, Hz.
        oneeuro_beta: cutoff increase per (person size per s) of joint speed.
        oneeuro_d_cutoff: cutoff of the speed estimate, Hz.
    """

    kind: SmoothingKind = "kalman"
    strength: float = 0.5
    min_score: float = 0.3
    joint_timeout_s: float = 0.5
    kalman_meas_std: float = 0.02
    kalman_accel_std: float = 10.0
    kalman_init_vel_std: float = 1.0
    oneeuro_min_cutoff: float = 2.0
    oneeuro_beta: float = 20.0
    oneeuro_d_cutoff: float = 1.0

    def __post_init__(self) -> None:
        if not 0.0 <= self.strength <= 1.0:
            raise ValueError(f"strength must be in [0, 1], got {self.strength}")
        for name in (
            "kalman_meas_std",
            "kalman_accel_std",
            "kalman_init_vel_std",
            "oneeuro_min_cutoff",
            "oneeuro_d_cutoff",
            "joint_timeout_s",
        ):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be a finite number > 0, got {value}")
        if not (math.isfinite(self.oneeuro_beta) and self.oneeuro_beta >= 0):
            raise ValueError(f"oneeuro_beta must be a finite number >= 0, got {self.oneeuro_beta}")
        if not 0.0 <= self.min_score <= 1.0:
            raise ValueError(f"min_score must be in [0, 1], got {self.min_score}")


def strength_gain(strength: float) -> float:
    """Bandwidth multiplier for a strength in [0, 1]: 10 at 0, 1 at 0.5, 0.1 at 1.

    One-Euro cutoffs are multiplied by it; the Kalman acceleration std by its square, because a
    constant-velocity filter's bandwidth grows roughly as sqrt(accel_std / meas_std). So one
    slider moves both filters by about the same factor in frequency.
    """
    s = min(max(float(strength), 0.0), 1.0)
    return 10.0 ** (2.0 * (0.5 - s))


def _unseen_too_long(gap: np.ndarray, timeout_s: float) -> np.ndarray:
    """Joints whose time since their last confident observation exceeds `timeout_s`. A gap of
    exactly the timeout (5 frames at 10 FPS for 0.5 s) is not too long, whatever the clock's
    last bits say: frame times from a video decoder and from a file rounded to milliseconds then
    decide alike."""
    return gap > timeout_s + _TIME_TOLERANCE


def _person_scale(keypoints: np.ndarray, valid: np.ndarray) -> float | None:
    """Larger side of the box around the confident joints, or None with fewer than 2 of them."""
    if int(valid.sum()) < 2:
        return None
    pts = keypoints[valid]
    return max(float(np.ptp(pts[:, 0])), float(np.ptp(pts[:, 1])), _MIN_SCALE)


class KeypointSmoother(ABC):
    """Stateful per-track filter: `update` once per frame for each visible track.

    Subclasses keep their state in `self._state[track_id]`; `drop` and `reset` are shared.
    """

    def __init__(self, config: SmoothingConfig | None = None) -> None:
        self.config = config or SmoothingConfig()
        self._state: dict[int, object] = {}
        self.set_strength(self.config.strength)

    def set_strength(self, strength: float) -> None:
        """Change smoothing strength live (GUI slider); existing tracks keep their state."""
        self.strength = min(max(float(strength), 0.0), 1.0)

    @abstractmethod
    def update(self, track_id: int, t: float, keypoints: np.ndarray, scores: np.ndarray) -> np.ndarray:
        """Feed one observation (17, 2) with scores (17,) at time `t` seconds; return (17, 2)."""

    def _prepare(self, keypoints: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, ...]:
        """float64 (17,2) keypoints, (17,) scores, and which joints may update the filter."""
        kpts = np.asarray(keypoints, dtype=np.float64).reshape(NUM_JOINTS, 2)
        conf = np.asarray(scores, dtype=np.float64).reshape(NUM_JOINTS)
        return kpts, conf, (conf >= self.config.min_score) & np.isfinite(kpts).all(axis=1)

    def drop(self, track_id: int) -> None:
        """Forget a track (the tracker deleted it)."""
        self._state.pop(track_id, None)

    def reset(self) -> None:
        """Forget every track (new source)."""
        self._state.clear()


class NoSmoother(KeypointSmoother):
    """Pass-through, so the tracker never branches on whether smoothing is on."""

    def update(self, track_id: int, t: float, keypoints: np.ndarray, scores: np.ndarray) -> np.ndarray:
        return np.array(keypoints, dtype=np.float32, copy=True)


# --------------------------------------------------------------------------------------------
# Kalman


@dataclass
class _KalmanTrack:
    kf: KalmanFilter
    t: float
    scale: float
    last_seen: np.ndarray  # (17,) time each joint was last updated; -inf = never


class KalmanSmoother(KeypointSmoother):
    """One filterpy `KalmanFilter` per track with a block state: per joint (x, vx, y, vy).

    All 17 joints share F and Q (block diagonal), so P stays block diagonal and joints are
    independent; one 68-dim filter is simply cheaper in Python than 17 small ones. Low-score joints
    are left out of the measurement (a per-call H with only the confident rows), which is exactly
    a predict-only step for them.
    """

    _DIM = 4 * NUM_JOINTS

    def update(self, track_id: int, t: float, keypoints: np.ndarray, scores: np.ndarray) -> np.ndarray:
        cfg = self.config
        kpts, conf, valid = self._prepare(keypoints, scores)
        state = self._state.get(track_id)
        scale = _person_scale(kpts, valid)

        if state is None:
            state = self._new_track(t, scale or _MIN_SCALE * 100.0)
            self._state[track_id] = state
        else:
            assert isinstance(state, _KalmanTrack)
            dt = min(max(t - state.t, 0.0), _MAX_DT)
            if dt > 0:
                self._predict(state, dt)
            state.t = t
        if scale is not None:  # slow EMA (size changes slowly); the first measured size is taken as is
            first = np.isneginf(state.last_seen).all()
            state.scale = scale if first else 0.8 * state.scale + 0.2 * scale

        stale = _unseen_too_long(t - state.last_seen, cfg.joint_timeout_s)
        reinit = valid & stale
        for j in np.flatnonzero(reinit):
            self._init_joint(state, int(j), kpts[j])
        upd = valid & ~reinit
        if upd.any():
            self._measure(state, kpts, conf, upd)
        state.last_seen[valid] = t

        x = state.kf.x[:, 0]
        out = np.stack([x[0::4], x[2::4]], axis=1)
        lost = _unseen_too_long(t - state.last_seen, cfg.joint_timeout_s)  # never seen, or gone too long
        out[lost] = kpts[lost]
        return out.astype(np.float32)

    def _new_track(self, t: float, scale: float) -> _KalmanTrack:
        kf = KalmanFilter(dim_x=self._DIM, dim_z=2 * NUM_JOINTS)
        kf.P = np.eye(self._DIM) * 1e6
        return _KalmanTrack(kf=kf, t=t, scale=scale, last_seen=np.full(NUM_JOINTS, -np.inf))

    def _init_joint(self, state: _KalmanTrack, j: int, xy: np.ndarray) -> None:
        cfg = self.config
        s = slice(4 * j, 4 * j + 4)
        state.kf.x[s, 0] = (xy[0], 0.0, xy[1], 0.0)
        pos_var = (cfg.kalman_meas_std * state.scale) ** 2
        vel_var = (cfg.kalman_init_vel_std * state.scale) ** 2
        state.kf.P[s, :] = 0.0
        state.kf.P[:, s] = 0.0
        state.kf.P[s, s] = np.diag([pos_var, vel_var, pos_var, vel_var])

    def _predict(self, state: _KalmanTrack, dt: float) -> None:
        """Rebuild F and Q for this dt (frame times are not uniform on a webcam) and predict."""
        accel_std = self.config.kalman_accel_std * strength_gain(self.strength) ** 2 * state.scale
        f1 = np.array([[1.0, dt], [0.0, 1.0]])
        q4 = Q_discrete_white_noise(dim=2, dt=dt, var=accel_std**2, block_size=2)
        eye = np.eye(2 * NUM_JOINTS)
        state.kf.F = np.kron(eye, f1)
        state.kf.Q = np.kron(np.eye(NUM_JOINTS), q4)
        state.kf.predict()

    def _measure(self, state: _KalmanTrack, kpts: np.ndarray, conf: np.ndarray, mask: np.ndarray) -> None:
        joints = np.flatnonzero(mask)
        rows = np.empty(2 * joints.size, dtype=np.int64)
        rows[0::2] = 4 * joints
        rows[1::2] = 4 * joints + 2
        H = np.zeros((rows.size, self._DIM))
        H[np.arange(rows.size), rows] = 1.0
        var = (self.config.kalman_meas_std * state.scale) ** 2 / np.clip(conf[joints], 0.05, 1.0)
        R = np.diag(np.repeat(var, 2))
        z = kpts[joints].reshape(-1, 1)
        state.kf.update(z, R=R, H=H)


# --------------------------------------------------------------------------------------------
# One-Euro


@dataclass
class _EuroTrack:
    x: np.ndarray  # (17, 2) filtered position
    dx: np.ndarray  # (17, 2) filtered velocity, px/s
    last_seen: np.ndarray  # (17,) time of the last confident observation; -inf = never
    scale: float


def _alpha(cutoff: np.ndarray | float, dt: np.ndarray) -> np.ndarray:
    tau = 1.0 / (2.0 * math.pi * np.asarray(cutoff))
    return 1.0 / (1.0 + tau / dt)


class OneEuroSmoother(KeypointSmoother):
    """One-Euro filter (Casiez et al., CHI 2012) per (track, joint), vectorised over joints.

    The speed that opens the cutoff is measured in person sizes per second, so `beta` does not
    depend on how large the person is in the image. Each joint keeps its own last time, so a joint
    held through low-confidence frames resumes with the true elapsed dt.
    """

    def update(self, track_id: int, t: float, keypoints: np.ndarray, scores: np.ndarray) -> np.ndarray:
        cfg = self.config
        kpts, conf, valid = self._prepare(keypoints, scores)
        state = self._state.get(track_id)
        if state is None:
            state = _EuroTrack(
                x=kpts.copy(),
                dx=np.zeros_like(kpts),
                last_seen=np.full(NUM_JOINTS, -np.inf),
                scale=_MIN_SCALE * 100.0,
            )
            self._state[track_id] = state
        assert isinstance(state, _EuroTrack)
        scale = _person_scale(kpts, valid)
        if scale is not None:
            state.scale = scale if np.isneginf(state.last_seen).all() else 0.8 * state.scale + 0.2 * scale

        gap = t - state.last_seen
        reinit = valid & _unseen_too_long(gap, cfg.joint_timeout_s)
        state.x[reinit] = kpts[reinit]
        state.dx[reinit] = 0.0

        step = valid & ~reinit & (gap > 0)
        if step.any():
            gain = strength_gain(self.strength)
            dt = gap[step][:, None]
            dx = (kpts[step] - state.x[step]) / dt
            a_d = _alpha(cfg.oneeuro_d_cutoff * gain, dt)
            dx_hat = a_d * dx + (1.0 - a_d) * state.dx[step]
            speed = np.linalg.norm(dx_hat, axis=1, keepdims=True) / state.scale
            cutoff = (cfg.oneeuro_min_cutoff + cfg.oneeuro_beta * speed) * gain
            a = _alpha(cutoff, dt)
            state.x[step] = a * kpts[step] + (1.0 - a) * state.x[step]
            state.dx[step] = dx_hat
        state.last_seen[valid] = t

        out = state.x.copy()
        lost = _unseen_too_long(t - state.last_seen, cfg.joint_timeout_s)
        out[lost] = kpts[lost]
        return out.astype(np.float32)


# The smoother of each `SmoothingKind`.
SMOOTHERS: dict[str, type[KeypointSmoother]] = {
    "kalman": KalmanSmoother,
    "oneeuro": OneEuroSmoother,
    "none": NoSmoother,
}


def switch_smoother(
    smoother: KeypointSmoother, kind: SmoothingKind, strength: float, config: SmoothingConfig
) -> KeypointSmoother:
    """`smoother` retuned to `strength` if it is of `kind` (its state kept), else a fresh one of
    `kind` built from `config` with that strength."""
    if type(smoother) is not SMOOTHERS.get(kind, NoSmoother):
        smoother = make_smoother(kind, replace(config, kind=kind, strength=strength))
    smoother.set_strength(strength)
    return smoother


def make_smoother(
    kind: SmoothingKind | None = None, config: SmoothingConfig | None = None
) -> KeypointSmoother:
    """Build the smoother named by `kind` (default: `config.kind`)."""
    config = config or SmoothingConfig()
    kind = kind or config.kind
    if kind not in SMOOTHERS:
        raise ValueError(f"unknown smoothing {kind!r}; choose one of {', '.join(SMOOTHERS)}")
    log.debug("keypoint smoother: %s (strength %.2f)", kind, config.strength)
    return SMOOTHERS[kind](config)
