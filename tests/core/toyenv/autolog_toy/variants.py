"""Plugins whose requirements are not met (a future toyfw)."""

from autolog import Patch, Plugin


class FuturePlugin(Plugin):
    name = "toy_future"
    requires = ("toyfw>=9",)
    patches = (Patch("toyfw.models:Model.fit"),)


def _log_predictions(call, result):
    call.sink.log_metric("predictions", len(result))


class PredictPlugin(Plugin):
    """Patches ``toyfw.api:predict`` only: ``toyfw.predict`` stays the original."""

    name = "toy_predict"
    requires = ("toyfw>=1.0,<2",)
    patches = (Patch("toyfw.api:predict", capture=("batch_size",), owns_run=True),)


class PredictReexportedPlugin(Plugin):
    """The fix: the patch names the package that re-exports ``predict``."""

    name = "toy_predict"
    requires = ("toyfw>=1.0,<2",)
    patches = (
        Patch(
            "toyfw.api:predict",
            capture=("batch_size",),
            owns_run=True,
            after=_log_predictions,
            reexported_by=("toyfw",),
        ),
    )
