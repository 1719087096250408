"""Checkpoints during ``fit``, laid out as MLflow 3 lays out Keras checkpoints.

What this module owns: the rules of the ``checkpoint*`` options (`check_options`), the
policy one ``fit`` follows (`CheckpointPolicy`), where a checkpoint goes in the run's
artifacts (`CheckpointPolicy.place`), and the per-``fit`` state that saves checkpoints and
hands them to the run's sink (`Checkpointer`). The fit callback calls it at the end of an
epoch (or of a step, with ``checkpoint_save_freq=N``).

The layout is the one ``mlflow.tensorflow.autolog(checkpoint=True)`` writes, so MLflow's
own readers, ``mlflow.tensorflow.load_checkpoint(run_id=..., epoch=..., global_step=...)``
and ``mlflow.utils.checkpoint_utils.download_checkpoint_artifact``, read autolog's:

* every checkpoint kept (``checkpoint_save_best_only=False``):
  ``checkpoints/epoch_<n>/checkpoint.keras`` and ``checkpoints/epoch_<n>/checkpoint_metrics.json``
  (``global_step_<n>`` instead of ``epoch_<n>`` with ``checkpoint_save_freq=N`` steps);
* best only: ``checkpoints/latest_checkpoint.keras`` and
  ``checkpoints/latest_checkpoint_metrics.json``, replaced each time the monitored value
  improves;
* weights only: ``checkpoint.weights.h5`` (``latest_checkpoint.weights.h5``): the suffix
  Keras 3's ``save_weights`` requires, and the ``.weights`` infix by which
  ``load_checkpoint`` knows to load weights into the model it is given;
* the metrics file: the epoch's (or step's) scalar logs plus ``epoch`` and ``global_step``;
* the run tag ``mlflow.latest_checkpoint_artifact``: the artifact path of the last
  checkpoint saved, which the readers start from.

A full model is ``checkpoint.keras`` where MLflow's Keras callback writes
``checkpoint.h5``: Keras's native format rather than the legacy HDF5 one (Keras 3 warns
about the latter). ``load_checkpoint`` loads either (``load_model`` goes by the
extension), and takes the file name from the tag.

Each checkpoint is handed over as soon as it is saved (`RunSink.log_temp_artifacts`), as
MLflow uploads each one: it goes into the run log at once, so a ``fit`` killed later
(an OOM kill, a preempted machine) still leaves its last checkpoint in the store.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from autolog import AutologWarning, RunSink, log_dict
from autolog_keras import snapshots

__all__ = [
    "LATEST_CHECKPOINT_TAG",
    "CheckpointPolicy",
    "Checkpointer",
    "check_options",
]

# MLflow's names (mlflow.utils.checkpoint_utils, mlflow.utils.mlflow_tags); the plugin does
# not import MLflow, so they are spelled out here and a test compares them with MLflow's.
LATEST_CHECKPOINT_TAG = "mlflow.latest_checkpoint_artifact"
CHECKPOINT_DIR = "checkpoints"
_MODEL_FILE = "checkpoint"
_METRICS_FILE = "checkpoint_metrics.json"
_LATEST = "latest_"
_MODEL_SUFFIX = ".keras"
_WEIGHTS_SUFFIX = ".weights.h5"

# Substrings of metric names for which bigger is better (Keras's own "auto" heuristic,
# extended to the usual suspects).
_MAXIMIZED = ("acc", "auc", "precision", "recall", "f1", "fmeasure", "iou", "top_k")

_MODES = ("auto", "min", "max")
# checkpoint_save_best_only when it is not given, by the value of ``checkpoint``: autolog's
# first two names, and MLflow's default for True.
_BEST_ONLY_BY_DEFAULT: dict[Any, bool] = {"epoch": False, "best": True, True: True}
# The options that only mean something with checkpoints on, and their defaults.
_DEPENDENT_DEFAULTS: dict[str, Any] = {
    "checkpoint_monitor": None,
    "checkpoint_mode": "auto",
    "checkpoint_save_best_only": None,
    "checkpoint_save_weights_only": False,
    "checkpoint_save_freq": "epoch",
}


def check_options(options: Any) -> None:
    """Raise ``ValueError`` (``TypeError`` for a value of the wrong kind) naming the
    ``checkpoint*`` option of ``options`` that is wrong, or the two that contradict."""
    checkpoint = options.checkpoint
    valid = "True, False, None, 'epoch' or 'best'"
    if not (checkpoint is None or isinstance(checkpoint, bool) or checkpoint in ("epoch", "best")):
        raise ValueError(f"checkpoint must be {valid}, got {checkpoint!r}")
    if options.checkpoint_mode not in _MODES:
        raise ValueError(
            f"checkpoint_mode must be one of {_MODES}, got {options.checkpoint_mode!r}"
        )
    monitor = options.checkpoint_monitor
    if monitor is not None and (not isinstance(monitor, str) or not monitor):
        raise TypeError(f"checkpoint_monitor must be a metric name or None, got {monitor!r}")
    best_only = options.checkpoint_save_best_only
    if best_only is not None and not isinstance(best_only, bool):
        raise TypeError(f"checkpoint_save_best_only must be True, False or None, got {best_only!r}")
    weights_only = options.checkpoint_save_weights_only
    if not isinstance(weights_only, bool):
        raise TypeError(f"checkpoint_save_weights_only must be True or False, got {weights_only!r}")
    freq = options.checkpoint_save_freq
    if freq != "epoch" and (isinstance(freq, bool) or not isinstance(freq, int) or freq < 1):
        raise ValueError(
            f"checkpoint_save_freq must be 'epoch' or a number of steps (an int >= 1), got {freq!r}"
        )

    if not checkpoint:
        given = [
            f"{name}={getattr(options, name)!r}"
            for name, default in _DEPENDENT_DEFAULTS.items()
            if getattr(options, name) != default
        ]
        if given:
            raise ValueError(
                f"{', '.join(given)} has no effect: checkpoint is {checkpoint!r}; "
                "pass checkpoint=True (or 'epoch' / 'best') to log checkpoints"
            )
        return
    if isinstance(checkpoint, str):
        implied = _BEST_ONLY_BY_DEFAULT[checkpoint]
        if best_only is not None and best_only != implied:
            raise ValueError(
                f"checkpoint={checkpoint!r} means checkpoint_save_best_only={implied}, "
                f"got checkpoint_save_best_only={best_only!r}; pass checkpoint=True with it"
            )
        if checkpoint == "epoch" and freq != "epoch":
            raise ValueError(
                f"checkpoint='epoch' saves after every epoch, got checkpoint_save_freq={freq!r}; "
                "for a checkpoint every N steps pass checkpoint=True, "
                "checkpoint_save_best_only=False, checkpoint_save_freq=N"
            )
    if freq != "epoch" and _best_only(checkpoint, best_only) and _is_validation(monitor):
        raise ValueError(
            f"checkpoint_monitor={monitor!r} is a validation metric, which only epochs "
            f"have; with checkpoint_save_freq={freq} the best checkpoint is decided on the "
            "training step's metrics (loss, accuracy, ...)"
        )


def _best_only(checkpoint: Any, best_only: bool | None) -> bool:
    return _BEST_ONLY_BY_DEFAULT[checkpoint] if best_only is None else best_only


def _is_validation(monitor: str | None) -> bool:
    return monitor is not None and monitor.startswith("val_")


@dataclass(frozen=True)
class CheckpointPolicy:
    """What one ``fit`` checkpoints: when, which ones, and how."""

    save_freq: str | int  # "epoch" or a number of optimizer steps
    best_only: bool
    weights_only: bool
    monitor: str
    mode: str  # "min" or "max"

    @classmethod
    def resolve(cls, options: Any, has_validation: bool) -> CheckpointPolicy | None:
        """The policy for a ``fit`` from checked options (``None``: no checkpoints).

        ``checkpoint_monitor`` defaults to ``val_loss`` when ``fit`` validates and
        checkpoints per epoch, else ``loss``; mode ``auto`` maximizes accuracy-like names.
        """
        if not options.checkpoint:
            return None
        freq = options.checkpoint_save_freq
        monitor = options.checkpoint_monitor
        if monitor is None:
            monitor = "val_loss" if has_validation and freq == "epoch" else "loss"
        mode = options.checkpoint_mode
        if mode == "auto":
            mode = "max" if any(s in monitor.lower() for s in _MAXIMIZED) else "min"
        return cls(
            save_freq=freq,
            best_only=_best_only(options.checkpoint, options.checkpoint_save_best_only),
            weights_only=options.checkpoint_save_weights_only,
            monitor=monitor,
            mode=mode,
        )

    @property
    def per_step(self) -> int | None:
        """Steps between checkpoints, or ``None`` when they are taken per epoch."""
        return None if self.save_freq == "epoch" else int(self.save_freq)

    def improved(self, value: float, best: float | None) -> bool:
        if math.isnan(value):
            return False
        if best is None:
            return True
        return value > best if self.mode == "max" else value < best

    def place(self, epoch: int, global_step: int) -> tuple[str, str, str]:
        """``(artifact directory, model file name, metrics file name)`` of a checkpoint."""
        suffix = _WEIGHTS_SUFFIX if self.weights_only else _MODEL_SUFFIX
        if self.best_only:
            return CHECKPOINT_DIR, f"{_LATEST}{_MODEL_FILE}{suffix}", f"{_LATEST}{_METRICS_FILE}"
        if self.save_freq == "epoch":
            directory = f"{CHECKPOINT_DIR}/epoch_{epoch}"
        else:
            directory = f"{CHECKPOINT_DIR}/global_step_{global_step}"
        return directory, f"{_MODEL_FILE}{suffix}", _METRICS_FILE


class Checkpointer:
    """The checkpoints of one ``fit``: decides, saves and hands each one to the sink."""

    def __init__(self, policy: CheckpointPolicy, sink: RunSink) -> None:
        self.policy = policy
        self._sink = sink
        self._best: float | None = None
        self._saved = 0
        self._keys_seen: set[str] = set()

    def consider(
        self, model: Any, epoch: int, global_step: int, metrics: Mapping[str, float]
    ) -> None:
        """Save a checkpoint of ``model`` now, unless only a better one is wanted."""
        policy = self.policy
        value: float | None = None
        if policy.best_only:
            value = metrics.get(policy.monitor)
            if value is None:
                # Not every epoch has every metric (validation_freq); said once, at the end.
                self._keys_seen.update(metrics)
                return
            if not policy.improved(value, self._best):
                return
        directory, model_file, metrics_file = policy.place(epoch, global_step)
        path = snapshots.save(model, model_file, weights_only=policy.weights_only)
        # The file first: the tag then names a checkpoint that is already on its way.
        self._sink.log_temp_artifacts(path, directory)
        record = {**metrics, "epoch": epoch, "global_step": global_step}
        log_dict(self._sink, record, f"{directory}/{metrics_file}")
        self._sink.set_tag(LATEST_CHECKPOINT_TAG, f"{directory}/{model_file}")
        self._saved += 1
        if value is not None:
            self._best = value
            self._sink.log_metric("checkpoint_best_epoch", epoch, step=epoch)

    def finish(self) -> None:
        """At the end of training: say so when the monitored metric never showed up."""
        if self._saved or not self._keys_seen:
            return
        warnings.warn(
            f"autolog: no checkpoint was saved: checkpoint_monitor {self.policy.monitor!r} "
            f"was never among the metrics Keras reported ({', '.join(sorted(self._keys_seen))})",
            AutologWarning,
            stacklevel=2,
        )
