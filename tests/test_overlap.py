"""Overlapped stages: frames decoded ahead and results written behind keep their order, and
Ctrl-C still keeps every finished frame, even while the writer lags behind."""

from __future__ import annotations

import json
import threading
import time

import pytest

from app.cli import main
from app.exporters.jsonl import JsonlWriter
from app.overlap import ReadAhead, WriteBehind
from app.pipeline import PosePipeline
from tests.fakes import save_blob_checkpoint


def test_read_ahead_yields_every_item_in_order_and_reads_on_its_own_thread():
    readers: set[str] = set()

    def items():
        for i in range(50):
            readers.add(threading.current_thread().name)
            yield i

    assert list(ReadAhead(items(), depth=3)) == list(range(50))
    assert readers == {"read-ahead"}


def test_read_ahead_passes_a_reading_error_on_and_stops_when_closed():
    def broken():
        yield 1
        raise OSError("disk gone")

    ahead = ReadAhead(broken())
    assert next(ahead) == 1
    with pytest.raises(OSError, match="disk gone"):
        next(ahead)

    def endless():
        while True:
            yield 0

    ahead = ReadAhead(endless(), depth=2)
    next(ahead)
    start = time.perf_counter()
    ahead.close()  # the reader is blocked on a full queue: it must still stop
    assert time.perf_counter() - start < 2.0
    assert list(ahead) == []


def test_write_behind_writes_in_order_and_reports_a_failure_in_the_caller():
    written: list[int] = []

    def slow_write(item):
        time.sleep(0.002)
        written.append(item)

    behind = WriteBehind(slow_write, depth=4)
    for i in range(30):
        behind.put(i)
    behind.close()
    assert written == list(range(30)) and behind.written == 30

    def failing(item):
        if item == 3:
            raise OSError("disk full")

    behind = WriteBehind(failing, depth=1)
    with pytest.raises(OSError, match="disk full"):
        for i in range(100):
            behind.put(i)
            time.sleep(0.01)
    with pytest.raises(OSError, match="disk full"):
        behind.close()
    assert behind.written == 3


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    return save_blob_checkpoint(tmp_path_factory.mktemp("w") / "blob_t.pth")


def test_ctrl_c_keeps_every_finished_frame_while_the_writer_lags(
    shared_dir, weights, tmp_path, monkeypatch, capsys
):
    """Writing is slower than posing here, so finished frames wait in the write-behind queue
    when Ctrl-C comes; all of them reach the file, in order, and the summary counts them."""
    write = JsonlWriter.write

    def slow_write(self, result):
        time.sleep(0.15)
        write(self, result)

    process = PosePipeline.process

    def stop_at_8(self, frame):
        if frame.index == 8:
            raise KeyboardInterrupt
        return process(self, frame)

    monkeypatch.setattr(JsonlWriter, "write", slow_write)
    monkeypatch.setattr(PosePipeline, "process", stop_at_8)
    out = tmp_path / "poses.jsonl"
    vtest = str(shared_dir / "data" / "video" / "vtest.mp4")
    argv = ["--headless", "--source", vtest, "--weights", str(weights), "--backend", "torch"]
    code = main([*argv, "--det-every", "5", "--no-progress", "--output", str(out)])
    err = capsys.readouterr().err
    frames = [json.loads(line)["frame"] for line in out.read_text().splitlines()]
    assert code == 130 and "interrupted after 8 frames" in err, err
    assert frames == list(range(8))
