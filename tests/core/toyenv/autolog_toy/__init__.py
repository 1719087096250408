"""A toy plugin for toyfw, written exactly as a third-party plugin would be."""

from __future__ import annotations

import dataclasses

from autolog import Call, Patch, Plugin, PluginOptions

_M = "toyfw.models"


@dataclasses.dataclass
class ToyOptions(PluginOptions):
    log_final: bool = True
    fail_in: str | None = None  # "before" | "after": makes the hook raise, for tests


def _maybe_fail(call: Call, where: str) -> None:
    if call.options.fail_in == where:
        raise RuntimeError(f"toy plugin failure in {where}")


def _add_callback(call: Call) -> None:
    _maybe_fail(call, "before")
    sink = call.sink

    def log_epoch(epoch: int, logs: dict) -> None:
        sink.log_metrics(logs, step=epoch)

    user = call.get("callbacks")
    call.replace("callbacks", [*(user or ()), log_epoch])


def _log_final(call: Call, result: object) -> None:
    _maybe_fail(call, "after")
    if call.options.log_final and isinstance(result, list) and result:
        call.sink.log_metric("final_loss", result[-1])


def _log_eval(call: Call, result: dict) -> None:
    call.sink.log_metrics({f"eval_{k}": v for k, v in result.items()})


def _log_units(call: Call, result: object) -> None:
    call.sink.log_param("units", call.get("config")["units"])


def _tag_size(call: Call, result: object) -> None:
    call.sink.set_tag("size_read", result)


def _log_async(call: Call, result: object) -> None:
    call.sink.log_metric("async_epochs", len(result))


class ToyPlugin(Plugin):
    name = "toy"
    requires = ("toyfw>=1.0,<2",)
    options_type = ToyOptions
    patches = (
        Patch(
            f"{_M}:Model.fit",
            capture=("epochs", "password"),
            before=_add_callback,
            after=_log_final,
            owns_run=True,
        ),
        Patch(f"{_M}:Model.evaluate", owns_run=True, reuse_instance_run=True, after=_log_eval),
        Patch(f"{_M}:Model.from_config", owns_run=True, after=_log_units),
        Patch(f"{_M}:Model.describe", owns_run=True),
        Patch(f"{_M}:Model.size", after=_tag_size),
        Patch(f"{_M}:Model.afit", capture=("epochs",), owns_run=True, after=_log_async),
        Patch(
            f"{_M}:train",
            capture=("epochs", "learning_rate", "api_key"),
            owns_run=True,
            reexported_by=("toyfw",),
        ),
        Patch("toyfw.api:train", capture=("epochs",), owns_run=True),
        Patch(f"{_M}:DEFAULT_MODEL.fit", capture=("epochs",), owns_run=True),
        Patch(f"{_M}:Model.not_in_this_version", optional=True),
    )
