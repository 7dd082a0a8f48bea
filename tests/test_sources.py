"""Frame sources against the real videos: order, timestamps, seeking, damage, missing devices, and the
newest-frame-wins behaviour of live sources (through `ReplaySource`, since CI has no camera)."""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from app.sources import ImageSource, LiveSource, ReplaySource, Source, SourceError, StreamSource, open_source
from app.types import Frame


@pytest.fixture(scope="session")
def video_dir(shared_dir: Path) -> Path:
    return shared_dir / "data" / "video"


def take(source: Source, n: int) -> list[Frame]:
    frames = []
    for frame in source:
        frames.append(frame)
        if len(frames) == n:
            break
    return frames


def assert_one_line(err: pytest.ExceptionInfo[SourceError]) -> str:
    message = str(err.value)
    assert message and "\n" not in message
    return message


def test_video_file_in_order_with_file_timestamps(video_dir: Path) -> None:
    with open_source(str(video_dir / "vtest.mp4")) as src:
        assert (src.name, src.fps, src.frame_count, src.is_live) == ("vtest.mp4", 10.0, 795, False)
        frames = take(src, 30)
        assert src.dropped_frames == 0
    assert [f.index for f in frames] == list(range(30))
    assert all(f.source_id == "vtest.mp4" for f in frames)
    assert all(f.image.shape == (576, 768, 3) and f.image.dtype == np.uint8 for f in frames)
    np.testing.assert_allclose([f.timestamp for f in frames], np.arange(30) / 10.0, atol=1e-6)
    assert next(iter(src), None) is None  # closed: iteration is over


def test_vp9_video_decodes(video_dir: Path) -> None:
    with open_source(video_dir / "sports2d_demo.mp4") as src:
        assert (src.fps, src.frame_count) == (30.0, 230)
        frames = take(src, 5)
    assert [f.image.shape for f in frames] == [(994, 1768, 3)] * 5
    assert frames[0].image.std() > 5  # a real picture, not a blank buffer
    np.testing.assert_allclose([f.timestamp for f in frames], np.arange(5) / 30.0, atol=1e-6)


def test_seek_lands_on_the_requested_frame(video_dir: Path) -> None:
    with open_source(video_dir / "vtest.mp4") as src:
        frame_100 = take(src, 101)[-1]
        src.seek(100)
        after = next(src)
        src.seek(5)
        assert next(src).index == 5
    assert after.index == 100 and after.timestamp == pytest.approx(10.0, abs=1e-3)
    assert np.array_equal(after.image, frame_100.image)


def _write(path: Path, value: int) -> None:
    assert cv2.imwrite(str(path), np.full((24, 32, 3), value, np.uint8))


def test_image_folder_natural_order_skips_corrupt(tmp_path: Path) -> None:
    for value, name in [(10, "img10.png"), (2, "img2.png"), (1, "img1.png"), (3, "IMG3.JPG")]:
        _write(tmp_path / name, value)
    (tmp_path / "img5.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    (tmp_path / "notes.txt").write_text("ignored")
    with open_source(str(tmp_path)) as src:
        assert isinstance(src, ImageSource) and src.frame_count == 5
        frames = list(src)
        assert src.dropped_frames == 1 and src.error is None
    assert [int(np.median(f.image)) for f in frames] == pytest.approx([1, 2, 3, 10], abs=2)
    assert [f.index for f in frames] == [0, 1, 2, 4]  # index = position in the folder; img5 skipped
    assert [f.timestamp for f in frames] == pytest.approx([0, 1 / 30, 2 / 30, 4 / 30])


def test_single_image_file(tmp_path: Path) -> None:
    _write(tmp_path / "one.png", 7)
    with open_source(tmp_path / "one.png") as src:
        frames = list(src)
    assert len(frames) == 1 and frames[0].image.shape == (24, 32, 3)


def test_empty_folder_raises(tmp_path: Path) -> None:
    (tmp_path / "readme.txt").write_text("no images here")
    with pytest.raises(SourceError) as err:
        open_source(tmp_path)
    assert "no images" in assert_one_line(err)


def test_missing_path_and_corrupt_video_raise_one_line(tmp_path: Path) -> None:
    missing = tmp_path / "nope" / "clip.mp4"
    with pytest.raises(SourceError) as err:
        open_source(str(missing))
    assert str(missing) in assert_one_line(err)

    fake = tmp_path / "fake.mp4"
    fake.write_text("this is a text file, not a video\n")
    for realtime in (False, True):
        with pytest.raises(SourceError) as err:
            open_source(fake, realtime=realtime)
        assert "fake.mp4" in assert_one_line(err)


def test_truncated_video_keeps_frames_and_reports(video_dir: Path, tmp_path: Path) -> None:
    # OpenCV reads the full frame count from the intact header, decodes what is there, then read()
    # returns False: the source stops cleanly and says so.
    data = (video_dir / "vtest.mp4").read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: int(len(data) * 0.4)])
    with open_source(cut) as src:
        assert src.frame_count == 795
        frames = list(src)
        assert src.error is not None and "ended early" in src.error and "\n" not in src.error
    assert 0 < len(frames) < 795
    assert [f.index for f in frames] == list(range(len(frames)))


def test_full_video_ends_without_error(tmp_path: Path, video_dir: Path) -> None:
    src = open_source(video_dir / "sports2d_demo.mp4")
    assert sum(1 for _ in src) == 230 and src.error is None
    src.close()


@pytest.mark.parametrize("spec", ["webcam", 7, "1"])
def test_no_camera_raises_one_line_quickly(spec: str | int) -> None:
    if Path("/dev/video0").exists():
        pytest.skip("this machine has a camera")
    start = time.monotonic()
    with pytest.raises(SourceError) as err:
        open_source(spec)
    assert "camera" in assert_one_line(err)
    assert time.monotonic() - start < 5.0


def test_bad_stream_url_fails_in_bounded_time() -> None:
    start = time.monotonic()
    with pytest.raises(SourceError) as err:
        open_source("rtsp://127.0.0.1:9/none")
    assert "rtsp://127.0.0.1:9/none" in assert_one_line(err)
    assert time.monotonic() - start < 15.0


def test_silent_server_times_out_and_hides_password() -> None:
    # A server that accepts the connection and never answers: only the open timeout ends the wait.
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]
    accepted: list[socket.socket] = []
    threading.Thread(target=lambda: accepted.append(server.accept()[0]), daemon=True).start()
    start = time.monotonic()
    try:
        with pytest.raises(SourceError) as err:
            StreamSource(f"rtsp://user:secret@127.0.0.1:{port}/cam", open_timeout_s=1.5)
    finally:
        server.close()
        for conn in accepted:
            conn.close()
    message = assert_one_line(err)
    assert "secret" not in message and f"127.0.0.1:{port}/cam" in message
    assert time.monotonic() - start < 6.0


def test_replay_slow_consumer_gets_newest_frame(video_dir: Path) -> None:
    start = time.monotonic()
    with open_source(video_dir / "vtest.mp4", realtime=True) as src:
        assert isinstance(src, ReplaySource) and src.is_live
        received: list[tuple[int, float]] = []
        for frame in src:
            received.append((frame.index, time.monotonic() - start))
            if len(received) == 6:
                break
            time.sleep(0.35)  # inference slower than the 10 fps "camera"
        dropped = src.dropped_frames
    indices = [i for i, _ in received]
    assert all(b - a >= 3 for a, b in zip(indices, indices[1:], strict=False)), indices
    assert dropped > 0
    for index, elapsed in received:  # latency does not grow: the frame is about "now"
        assert abs(index - elapsed * 10.0) <= 2.5, received


def test_replay_fast_consumer_runs_at_file_rate(video_dir: Path) -> None:
    with open_source(video_dir / "vtest.mp4", realtime=True) as src:
        first = next(src)
        start = time.monotonic()
        frames = [next(src) for _ in range(15)]
        rate = len(frames) / (time.monotonic() - start)
        assert src.dropped_frames == 0
    assert 8.0 < rate < 11.5
    assert [f.index for f in frames] == list(range(first.index + 1, first.index + 16))
    assert frames[-1].timestamp - frames[0].timestamp == pytest.approx(1.4, abs=0.15)


def test_context_manager_stops_reader_thread(video_dir: Path) -> None:
    before = set(threading.enumerate())
    with open_source(video_dir / "vtest.mp4", realtime=True) as src:
        next(src)
        started = set(threading.enumerate()) - before
        assert started  # the reader thread runs while the source is open
    assert not any(t.is_alive() for t in started)
    assert src.closed and next(src, None) is None


def test_replay_of_damaged_file_ends_with_error(video_dir: Path, tmp_path: Path) -> None:
    # A small cut (15 frames) so the real-time replay reaches the damage in about a second.
    data = (video_dir / "vtest.mp4").read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: int(len(data) * 0.05)])
    with open_source(cut, realtime=True) as src:
        frames = list(src)
        assert src.error is not None and "ended early" in src.error
    assert 0 < len(frames) < 30


class _FakeCamera:
    """A capture that gives `good` frames, then fails (unplugged) or blocks (a hung driver)."""

    def __init__(self, good: int, *, hang: bool = False) -> None:
        self.good, self.hang, self.reads = good, hang, 0
        self.unblock = threading.Event()
        self.released = threading.Event()

    def read(self) -> tuple[bool, np.ndarray | None]:
        self.reads += 1
        if self.reads <= self.good:
            time.sleep(0.005)
            return True, np.zeros((4, 4, 3), np.uint8)
        if self.hang:
            self.unblock.wait(5.0)
        return False, None

    def release(self) -> None:
        self.released.set()


def test_unplugged_camera_ends_iteration_with_error() -> None:
    cam = _FakeCamera(good=5)
    with LiveSource(cam, name="webcam:9", what="camera 9", fps=None) as src:  # type: ignore[arg-type]
        frames = list(src)
        assert src.error is not None and "camera 9 stopped sending frames" in src.error
    assert 0 < len(frames) <= 5 and cam.released.wait(1.0)


def test_hung_camera_ends_after_stall_timeout() -> None:
    cam = _FakeCamera(good=1, hang=True)
    src = LiveSource(cam, name="webcam:9", what="camera 9", fps=None, stall_timeout_s=0.5)  # type: ignore[arg-type]
    start = time.monotonic()
    frames = list(src)
    assert len(frames) == 1 and 0.4 < time.monotonic() - start < 2.0
    assert src.error is not None and "no frame for 0.5 s" in src.error
    src.close(timeout_s=0.1)  # the read is still blocked: close returns anyway
    cam.unblock.set()
    assert cam.released.wait(2.0)  # the reader releases the capture once its read returns
