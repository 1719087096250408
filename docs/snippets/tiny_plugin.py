"""autolog plugin for tinyfw: one run per ``tinyfw.train``, with its params, the training
data, the per-round metrics (``train-logloss``, ``train-error``) and the model."""

import autolog
from autolog import Patch, Plugin


class _Logging:
    """The callback's methods; tinyfw calls ``after_iteration`` after every round."""

    def __init__(self, sink, every_n_steps):
        super().__init__()
        self.sink, self.every_n_steps = sink, every_n_steps or 1

    def after_iteration(self, model, epoch, evals_log):
        # tinyfw calls this itself, outside the core's guard: an error must not stop training.
        with autolog.guard("tiny", "callback after_iteration"):
            if epoch % self.every_n_steps == 0:
                latest = {
                    f"{data}-{metric}": values[-1]
                    for data, metrics in evals_log.items()
                    for metric, values in metrics.items()
                }
                self.sink.log_metrics(latest, step=epoch)
        return False  # True would stop training


# tinyfw takes only subclasses of its TrainingCallback. The class is built on first use, so
# importing the plugin (which autolog does at discovery) never imports tinyfw.
LoggingCallback = autolog.lazy_subclass(
    "tinyfw.training:TrainingCallback", _Logging, name="LoggingCallback"
)


def before_train(call):
    call.sink.log_params(autolog.flatten_params(call.get("params")))
    call.sink.log_dataset(call.get("X"), targets=call.get("y"), context="train")
    callback = LoggingCallback(call.sink, call.options.log_every_n_steps)
    autolog.add_callback(call, callback)  # after the user's callbacks, in a new list


def after_train(call, model):
    if call.options.log_models:
        call.sink.log_model(
            "sklearn",  # the model's MLflow flavor: "xgboost" for an XGBoost Booster
            loader=autolog.snapshot(model),  # the model as it is now, packaged off-thread
            input_example=call.get("X")[:5],  # MLflow infers the signature from it
        )


class TinyPlugin(Plugin):
    name = "tiny"  # = the entry-point name, once it is a distribution
    patches = (
        Patch(
            "tinyfw.training:train",
            capture=("num_boost_round",),  # logged as a param, default included
            before=before_train,
            after=after_train,
            owns_run=True,  # the outermost call opens (or joins the user's) run
            reexported_by=("tinyfw",),  # tinyfw.train is the same function
        ),
    )
