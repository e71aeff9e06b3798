"""TAO's checkpoint names (0-based epoch), and waiting for a complete file before a pause."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from automl.tao.checkpoints import (CheckpointFile, checkpoint_after, checkpoint_name,
                                    checkpoint_pattern, wait_for_checkpoint)


def test_names_speak_tao_epochs_callers_speak_epochs_completed(tmp_path):
    assert checkpoint_name(1, 10) == "model_epoch_000_step_00010.pth"  # a one-epoch run
    assert checkpoint_name(2, 20) == "model_epoch_001_step_00020.pth"  # resumed for one more
    assert checkpoint_pattern(3) == "model_epoch_002_step_*.pth"
    parsed = CheckpointFile.parse(Path("model_epoch_002_step_00030.pth"))
    assert (parsed.epochs, parsed.tao_epoch, parsed.step) == (3, 2, 30)
    assert CheckpointFile.parse(Path("segformer_model_latest.pth")) is None
    for name in ("model_epoch_000_step_00010.pth", "model_epoch_001_step_00020.pth",
                 "segformer_model_latest.pth"):
        (tmp_path / name).write_bytes(b"w")
    assert checkpoint_after(tmp_path, 2).path.name == "model_epoch_001_step_00020.pth"
    assert checkpoint_after(tmp_path, 3) is None  # never "latest" instead


def test_wait_returns_only_a_complete_file(tmp_path):
    """The file appears, grows while it is written, then holds still: only then is it returned."""
    path = tmp_path / "model_epoch_000_step_00010.pth"
    sizes = []

    def writer():
        time.sleep(0.2)
        with path.open("wb") as handle:
            for _ in range(5):
                handle.write(b"x" * 1000)
                handle.flush()
                time.sleep(0.15)

    thread = threading.Thread(target=writer)
    thread.start()
    found = wait_for_checkpoint(tmp_path, 1, timeout_s=10, writer_alive=thread.is_alive,
                                poll_s=0.1)
    sizes.append(found.path.stat().st_size)
    thread.join()
    assert found is not None and sizes == [5000]


def test_wait_gives_up_when_the_writer_exits_without_the_file(tmp_path):
    started = time.monotonic()
    assert wait_for_checkpoint(tmp_path, 1, timeout_s=30, writer_alive=lambda: False) is None
    assert time.monotonic() - started < 5  # did not sit out the timeout
