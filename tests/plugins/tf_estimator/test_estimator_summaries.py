"""EventTail: scalar summaries read incrementally from event files."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("tensorflow_estimator")

from autolog_tf_estimator.summaries import EventTail, Scalar

pytestmark = pytest.mark.tf215


class _V1Writer:
    """A TF1 FileWriter (what Estimator uses), appending to one event file."""

    def __init__(self, tf: Any, logdir: Path) -> None:
        self._tf = tf
        with tf.Graph().as_default():
            self._writer = tf.compat.v1.summary.FileWriter(str(logdir))

    def write(self, values: dict[str, list[tuple[int, float]]]) -> None:
        tf = self._tf
        for tag, points in values.items():
            for step, value in points:
                summary = tf.compat.v1.Summary(
                    value=[tf.compat.v1.Summary.Value(tag=tag, simple_value=value)]
                )
                self._writer.add_summary(summary, step)
        self._writer.flush()


def test_reads_v1_and_v2_scalars_and_ignores_the_rest(tf: Any, tmp_path: Path) -> None:
    tail = EventTail(str(tmp_path))
    _V1Writer(tf, tmp_path).write({"loss": [(1, 0.5)], "global_step/sec": [(1, 12.0)]})
    writer = tf.summary.create_file_writer(str(tmp_path))
    with writer.as_default():
        tf.summary.scalar("v2_scalar", 3.5, step=2)
        tf.summary.text("notes", "not a metric", step=2)
        tf.summary.histogram("weights", [1.0, 2.0, 3.0], step=2)
    writer.flush()
    found = tail.poll()
    assert Scalar("loss", 1, 0.5) in found
    assert Scalar("global_step/sec", 1, 12.0) in found
    assert Scalar("v2_scalar", 2, 3.5) in found
    assert {s.tag for s in found} == {"loss", "global_step/sec", "v2_scalar"}


def test_polls_are_incremental_and_skip_earlier_events(tf: Any, tmp_path: Path) -> None:
    writer = _V1Writer(tf, tmp_path)
    writer.write({"old": [(1, 1.0)]})
    tail = EventTail(str(tmp_path))  # starts past what is already there
    assert tail.poll() == []
    writer.write({"new": [(2, 2.0)]})
    assert tail.poll() == [Scalar("new", 2, 2.0)]
    assert tail.poll() == []
    writer.write({"new": [(3, 3.0)]})
    assert tail.poll() == [Scalar("new", 3, 3.0)]
    assert [s.tag for s in EventTail(str(tmp_path), from_start=True).poll()] == [
        "old",
        "new",
        "new",
    ]


def test_a_partly_written_record_waits_for_the_next_poll(tf: Any, tmp_path: Path) -> None:
    source = tmp_path / "source"
    source.mkdir()
    _V1Writer(tf, source).write({"a": [(1, 1.0), (2, 2.0)]})
    (event_file,) = source.glob("events.out.tfevents.*")
    data = event_file.read_bytes()
    target = tmp_path / "target"
    target.mkdir()
    copy = target / event_file.name
    tail = EventTail(str(target))
    cut = len(data) - 7  # inside the last record
    copy.write_bytes(data[:cut])
    assert [s.step for s in tail.poll()] == [1]
    with copy.open("ab") as handle:
        handle.write(data[cut:])
    assert [s.step for s in tail.poll()] == [2]


def test_missing_directory_is_empty(tmp_path: Path) -> None:
    tail = EventTail(os.fspath(tmp_path / "does-not-exist"))
    assert tail.poll() == []
