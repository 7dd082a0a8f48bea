"""The file endings every command takes for an image or a video (the app's folder sources, the
batch command's folder walk, the pseudo-labeller's inputs): what OpenCV reads."""

from __future__ import annotations

__all__ = ["IMAGE_EXTENSIONS", "VIDEO_EXTENSIONS"]

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"})
# What OpenCV's FFmpeg backend reads (a file named explicitly is always tried, whatever its ending).
VIDEO_EXTENSIONS = frozenset(
    {".mp4", ".m4v", ".mov", ".avi", ".mkv", ".webm", ".mpg", ".mpeg", ".wmv", ".flv", ".ts", ".mts", ".3gp"}
)
