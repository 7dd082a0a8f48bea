"""Settings that survive between runs of the window, in one `QSettings` store.

Values are read back with types and defaults here, so a hand-edited or stale ini file can never
hand the window a string where it expects a float. `SDPOSE_SETTINGS=path.ini` points the store at
a file of its own (tests, portable installs) instead of the user's `~/.config/sdpose-app`.

What the command line sets is a one-off: it wins for this session, but the store keeps what the
user last chose in the window. Otherwise one `--weights other.pth` would silently become every
later launch's default, and break them all once that file is moved.
"""

from __future__ import annotations

import argparse
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from typing import Any

from PyQt6.QtCore import QByteArray, QSettings

from app.builders import BACKEND_CHOICES, backend_choice
from app.pipeline import AppConfig
from app.smoothing import SMOOTHING_KINDS
from app.tracker import TrackerConfig

__all__ = ["GuiSettings", "SettingsStore", "SETTINGS_ENV", "initial_settings"]

logger = logging.getLogger(__name__)

SETTINGS_ENV = "SDPOSE_SETTINGS"


@dataclass
class GuiSettings:
    """What the window remembers between runs."""

    last_source: str = ""
    weights: str = ""
    threshold: float = 0.3
    smoothing: str = "kalman"
    strength: float = 0.5
    det_every: int = 5
    det_auto: bool = False
    model: str = ""
    backend: str = ""
    flip_test: bool = False
    refine: bool = False
    show_boxes: bool = False
    show_ids: bool = True
    max_speed: bool = False
    camera_index: int = 0


class SettingsStore:
    """Typed load/save of `GuiSettings` plus the window geometry and dock layout."""

    def __init__(self, path: str | None = None) -> None:
        path = path or os.environ.get(SETTINGS_ENV) or None
        if path:
            self.qsettings = QSettings(path, QSettings.Format.IniFormat)
        else:
            self.qsettings = QSettings(
                QSettings.Format.IniFormat, QSettings.Scope.UserScope, "sdpose-app", "sdpose-app"
            )

    @property
    def path(self) -> str:
        return self.qsettings.fileName()

    def load(self, defaults: GuiSettings | None = None) -> GuiSettings:
        """Stored values, each falling back to `defaults` when missing or of the wrong type."""
        out = replace(defaults) if defaults is not None else GuiSettings()
        s = self.qsettings
        for f in fields(GuiSettings):
            if not s.contains(f.name):
                continue
            default = getattr(out, f.name)
            raw = s.value(f.name)
            try:
                value = _coerce(raw, type(default))
            except (TypeError, ValueError):
                logger.warning("ignoring stored setting %s=%r (%s)", f.name, raw, self.path)
                continue
            setattr(out, f.name, value)
        out.threshold = min(max(out.threshold, 0.0), 1.0)
        out.strength = min(max(out.strength, 0.0), 1.0)
        out.det_every = min(max(out.det_every, 1), 60)
        if out.smoothing not in SMOOTHING_KINDS:
            out.smoothing = "kalman"
        if out.backend not in ("", *BACKEND_CHOICES):
            out.backend = ""
        return out

    def save(self, values: GuiSettings, one_off: Mapping[str, Any] | None = None) -> None:
        """Store `values`, except a value that is still what the command line set (`one_off`):
        the stored one stays."""
        one_off = one_off or {}
        for f in fields(GuiSettings):
            value = getattr(values, f.name)
            if f.name in one_off and one_off[f.name] == value:
                continue
            self.qsettings.setValue(f.name, value)
        self.qsettings.sync()

    def geometry(self) -> tuple[QByteArray | None, QByteArray | None]:
        """(window geometry, dock/toolbar state) as saved by `save_geometry`, or None."""
        geo = self.qsettings.value("window/geometry")
        state = self.qsettings.value("window/state")
        return (
            geo if isinstance(geo, QByteArray) else None,
            state if isinstance(state, QByteArray) else None,
        )

    def save_geometry(self, geometry: QByteArray, state: QByteArray) -> None:
        self.qsettings.setValue("window/geometry", geometry)
        self.qsettings.setValue("window/state", state)
        self.qsettings.sync()


def _coerce(raw: object, kind: type) -> object:
    """Ini files store everything as text; turn it back into `kind`."""
    if kind is bool:
        if isinstance(raw, bool):
            return raw
        text = str(raw).strip().lower()
        if text in ("true", "1", "yes"):
            return True
        if text in ("false", "0", "no"):
            return False
        raise ValueError(raw)
    if kind is int:
        return int(str(raw))
    if kind is float:
        return float(str(raw))
    return "" if raw is None else str(raw)


def initial_settings(
    args: argparse.Namespace, cfg: AppConfig, store: SettingsStore
) -> tuple[GuiSettings, dict[str, Any]]:
    """Command-line flags win over remembered settings, which win over `configs/*.yaml`.

    Returns the session's settings and the ones the flags set (pass them to `SettingsStore.save`,
    which does not store them)."""
    smoothing = TrackerConfig.load().smoothing
    defaults = GuiSettings(
        smoothing=smoothing.kind,
        strength=smoothing.strength,
        det_every=cfg.detection.every,
        det_auto=cfg.detection.adaptive,
        model=cfg.model,
        backend=backend_choice(cfg.backend, cfg.precision),
        flip_test=cfg.flip_test,
        refine=cfg.refine.enabled,
    )
    s = store.load(defaults)
    flags: dict[str, Any] = {}
    if args.model:
        flags["model"] = args.model
    if args.backend or args.precision:  # --precision int8 picks the window's "ONNX Runtime int8"
        flags["backend"] = backend_choice(args.backend or cfg.backend, args.precision or cfg.precision)
    if args.flip_test is not None:
        flags["flip_test"] = bool(args.flip_test)
    if args.refine is not None:
        flags["refine"] = bool(args.refine)
    if args.smoothing:
        flags["smoothing"] = args.smoothing
    if args.det_every == "auto":
        flags["det_auto"] = True
    elif args.det_every is not None and str(args.det_every).isdigit() and int(args.det_every) >= 1:
        flags["det_every"], flags["det_auto"] = int(args.det_every), False
    if args.weights:
        flags["weights"] = args.weights
    s = replace(s, **flags)
    s.model = s.model or cfg.model
    s.backend = s.backend or backend_choice(cfg.backend, cfg.precision)
    return s, flags
