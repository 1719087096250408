"""Plugin and Patch declarations are validated when they are declared."""

from __future__ import annotations

import dataclasses

import pytest

from autolog import Patch, Plugin, PluginDeclarationError, PluginOptions


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"target": "no_colon.here"}, "not of the form"),
        ({"target": "mod:Cls.attr", "capture": "epochs"}, "sequence of argument names"),
        ({"target": "mod:Cls.attr", "capture": ["not an identifier"]}, "not an argument name"),
        ({"target": "mod:Cls.attr", "before": 3}, "must be callable"),
        ({"target": "mod:Cls.attr", "nested": "maybe"}, "'skip' or 'join'"),
        ({"target": "mod:Cls.attr", "reuse_instance_run": True}, "needs owns_run"),
    ],
)
def test_bad_patch_declarations(kwargs: dict, message: str) -> None:
    with pytest.raises(PluginDeclarationError, match=message):
        Patch(**kwargs)


def test_bad_plugin_declarations() -> None:
    with pytest.raises(PluginDeclarationError, match="lowercase identifier"):

        class NoName(Plugin):
            pass

    with pytest.raises(PluginDeclarationError, match="not a PEP 508"):

        class BadRequires(Plugin):
            name = "bad"
            requires = ("keras >= = 3",)

    with pytest.raises(PluginDeclarationError, match="more than once"):

        class Twice(Plugin):
            name = "twice"
            patches = (Patch("m:A.f"), Patch("m:A.f"))

    with pytest.raises(PluginDeclarationError, match="dataclass subclassing"):

        class BadOptions(Plugin):
            name = "badopts"
            options_type = dict  # type: ignore[assignment]


def test_options_and_framework_defaults() -> None:
    @dataclasses.dataclass
    class Opts(PluginOptions):
        checkpoint: str | None = None

    class Good(Plugin):
        name = "good"
        requires = (("tf-keras>=2.15", "keras>=2.15"),)
        options_type = Opts

    assert Good.framework == "tf-keras"
    assert Good.option_names() == ["log_every_n_steps", "log_models", "checkpoint"]
    assert Good.make_options({"checkpoint": "best"}).checkpoint == "best"
    with pytest.raises(TypeError, match="valid options"):
        Good.make_options({"chekpoint": "best"})
