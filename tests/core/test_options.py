"""The shared options are defined once (autolog.options) and every surface uses that one
definition: autolog(), a plugin's options, and the ``autolog run`` command line."""

from __future__ import annotations

import dataclasses

import click
import pytest
from click.testing import CliRunner

import autolog
from autolog import Plugin, PluginOptions
from autolog.cli import main
from autolog.options import COMMON_OPTIONS


def test_the_four_shared_options_and_their_defaults_match_autolog() -> None:
    import inspect

    assert sorted(COMMON_OPTIONS) == ["extra_tags", "log_every_n_steps", "log_models", "silent"]
    signature = inspect.signature(autolog.autolog).parameters
    for name, option in COMMON_OPTIONS.items():
        assert signature[name].default == option.default, name
        assert option.help and option.type


@pytest.mark.parametrize("value", [0, -1, 1.5, True, "3"])
def test_autolog_and_the_definition_refuse_the_same_step_counts(value) -> None:
    with pytest.raises(TypeError, match="log_every_n_steps must be a positive int or None") as a:
        autolog.autolog(frameworks=["toy"], log_every_n_steps=value)
    with pytest.raises(TypeError) as b:
        COMMON_OPTIONS["log_every_n_steps"].validate(value)
    assert str(a.value) == str(b.value)


def test_a_plugins_own_options_follow_the_plugin_rule() -> None:
    @dataclasses.dataclass
    class Options(PluginOptions):
        pass

    class Steps(Plugin):
        name = "toy_steps"
        options_type = Options

    assert Steps.make_options({"log_every_n_steps": 0}).log_every_n_steps == 0  # a plugin's "off"
    with pytest.raises(TypeError, match=r"'toy_steps': log_every_n_steps must be an int >= 0"):
        Steps.make_options({"log_every_n_steps": -1})
    with pytest.raises(TypeError, match="log_models must be True, False or None, got 'yes'"):
        Steps.make_options({"log_models": "yes"})


def test_the_command_line_options_are_built_from_the_definitions() -> None:
    run = main.commands["run"]
    params = {p.name: p for p in run.params}
    for name, option in COMMON_OPTIONS.items():
        param = params[name]
        assert param.help == option.help
        assert f"--{option.cli_name}" in param.opts
    steps = params["log_every_n_steps"]
    assert isinstance(steps.type, click.IntRange)
    assert steps.type.min == COMMON_OPTIONS["log_every_n_steps"].minimum
    assert params["log_models"].secondary_opts == ["--no-log-models"]
    assert params["extra_tags"].multiple


def test_the_command_line_refuses_a_step_count_of_zero() -> None:
    result = CliRunner().invoke(main, ["run", "--log-every-n-steps", "0", "--", "true"])
    assert result.exit_code == 2
    assert "--log-every-n-steps" in result.output and "x>=1" in result.output
