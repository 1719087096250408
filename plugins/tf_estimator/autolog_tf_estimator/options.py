"""The options of the ``tf_estimator`` plugin: ``autolog.autolog(tf_estimator={...})``."""

from __future__ import annotations

import dataclasses

from autolog.options import check_log_every_n_steps, check_log_models
from autolog.plugin import PluginOptions

__all__ = ["EstimatorOptions"]


@dataclasses.dataclass
class EstimatorOptions(PluginOptions):
    """What the Estimator plugin logs.

    Attributes:
        log_every_n_steps: log the training loss every N global steps. ``None`` (and no
            global value given to ``autolog()``) follows the estimator's own
            ``RunConfig.log_step_count_steps`` (100 by default), the cadence at which
            Estimator itself prints the loss. ``0`` turns the per-step loss off.
        log_models: log the exported SavedModel after ``export_saved_model`` and the final
            checkpoint after ``train``.
        log_checkpoint: with ``log_models``, also log the final checkpoint (set ``False``
            when checkpoints are large and only the exported model matters).
        log_summaries: log every scalar summary training writes to ``model_dir``
            (``global_step/sec``, ``tf.compat.v1.summary.scalar`` in a ``model_fn``, ...).
        log_tensorboard: log the TensorBoard event files of ``model_dir`` as artifacts.
    """

    log_checkpoint: bool = True
    log_summaries: bool = True
    log_tensorboard: bool = False

    def __post_init__(self) -> None:
        # Options are built inside autolog(): a bad value fails there, not mid-training.
        # The core's rule for the common options; 0 ("no per-step loss") is this plugin's own.
        check_log_every_n_steps(self.log_every_n_steps, plugin=True)
        check_log_models(self.log_models, plugin=True)
        for name in ("log_checkpoint", "log_summaries", "log_tensorboard"):
            if not isinstance(getattr(self, name), bool):
                raise TypeError(f"{name} must be True or False, got {getattr(self, name)!r}")
