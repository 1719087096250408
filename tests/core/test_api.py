"""autolog() and disable(): validation, discovery outcomes, environment variables."""

from __future__ import annotations

import warnings

import pytest

import autolog
from autolog.registry import registry


def test_returns_the_enabled_names_and_skips_unavailable_plugins_quietly() -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        enabled = autolog.autolog(frameworks=None)
    assert "toy" in enabled
    assert "toy_future" not in enabled and "toy_misnamed" not in enabled
    # A plugin that failed to load is named, with the reason, even when not requested.
    messages = [str(w.message) for w in caught if issubclass(w.category, autolog.AutologWarning)]
    assert any("toy_broken" in m and "broken on purpose" in m for m in messages)
    assert not any(m.startswith("autolog: plugin 'toy_future'") for m in messages)
    assert all(m.startswith("autolog: ") for m in messages)


def test_unknown_framework_lists_the_available_plugins() -> None:
    with pytest.raises(ValueError, match=r"unknown framework 'nope'; available plugins: .*toy"):
        autolog.autolog(frameworks=["toy", "nope"])
    assert registry.enabled_names() == []  # nothing changed


def test_unknown_option_names_the_valid_ones() -> None:
    with pytest.raises(TypeError, match=r"unknown option 'colour' for plugin 'toy'.*log_final"):
        autolog.autolog(frameworks=["toy"], toy={"colour": "red"})
    with pytest.raises(TypeError, match="unexpected keyword argument 'torch'"):
        autolog.autolog(torch={"x": 1})
    with pytest.raises(TypeError, match="must be a mapping"):
        autolog.autolog(toy=["log_final"])
    assert registry.enabled_names() == []


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"frameworks": 3}, "frameworks must be plugin names"),
        ({"frameworks": ["toy", 1]}, "plugin names"),
        ({"log_every_n_steps": 0}, "positive int"),
        ({"log_every_n_steps": True}, "positive int"),
        ({"log_models": "yes"}, "log_models must be True or False"),
        ({"extra_tags": ["a"]}, "extra_tags must be a mapping"),
    ],
)
def test_wrong_types_are_refused_clearly(kwargs: dict, message: str) -> None:
    with pytest.raises(TypeError, match=message):
        autolog.autolog(**kwargs)


def test_requested_but_unavailable_plugin_warns_with_the_reason() -> None:
    with pytest.warns(autolog.AutologWarning, match=r"toy_future.*toyfw 1\.2\.0 is installed"):
        assert autolog.autolog(frameworks=["toy_future"]) == []
    with pytest.warns(autolog.AutologWarning, match=r"toy_broken.*broken on purpose"):
        assert autolog.autolog(frameworks=["toy_broken", "toy"]) == ["toy"]


def test_options_inherit_the_global_values() -> None:
    autolog.autolog(frameworks=["toy"], log_every_n_steps=5, log_models=False)
    options = registry.enabled("toy").options
    assert options.log_every_n_steps == 5 and options.log_models is False
    autolog.autolog(frameworks=["toy"], log_every_n_steps=5, toy={"log_every_n_steps": 2})
    assert registry.enabled("toy").options.log_every_n_steps == 2


def test_calling_again_reconfigures_and_disable_flag(store) -> None:
    autolog.autolog(frameworks=["toy"])
    autolog.autolog(frameworks=["toy"], toy={"log_final": False})
    import toyfw

    toyfw.Model().fit(1)
    assert "final_loss" not in store.last_run().metrics
    assert autolog.autolog(frameworks=["toy"], disable=True) == []
    assert registry.enabled_names() == []


def test_disabled_plugins_environment_variable(monkeypatch) -> None:
    monkeypatch.setenv("AUTOLOG_DISABLED_PLUGINS", "toy")
    with pytest.warns(autolog.AutologWarning, match="disabled by AUTOLOG_DISABLED_PLUGINS"):
        assert autolog.autolog(frameworks=["toy"]) == []
    monkeypatch.setenv("AUTOLOG_DISABLED_PLUGINS", "*")
    assert "toy" not in autolog.autolog()


def test_autoload_disabled_loads_only_requested_or_shipped(monkeypatch) -> None:
    monkeypatch.setenv("AUTOLOG_DISABLE_PLUGIN_AUTOLOAD", "1")
    infos = autolog.available_plugins()
    assert infos["toy"].not_loaded and infos["toy"].plugin_class is None
    assert infos["toy_broken"].not_loaded  # never imported, so it cannot fail
    assert infos["keras"].not_loaded is None  # shipped with autolog
    assert autolog.autolog(frameworks=["toy"]) == ["toy"]


def test_silent_suppresses_our_warnings() -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        autolog.autolog(frameworks=["toy_future"], silent=True)
    assert not [w for w in caught if issubclass(w.category, autolog.AutologWarning)]


def test_a_call_that_raises_leaves_silent_as_it_was() -> None:
    from autolog import safety

    with pytest.raises(ValueError, match="unknown framework"):
        autolog.autolog(frameworks=["toy", "no_such_plugin"], silent=True)
    assert not safety.silent()
    with pytest.raises(TypeError):
        autolog.autolog(frameworks=["toy"], silent=True, toy={"no_such_option": 1})
    assert not safety.silent()
    with pytest.warns(autolog.AutologWarning, match="toy_future"):
        autolog.autolog(frameworks=["toy_future"])


# Near names are suggested ---------------------------------------------------------------


def test_a_misspelt_argument_suggests_the_argument_it_was_meant_to_be() -> None:
    with pytest.raises(
        TypeError, match=r"'log_every_n_step' \(did you mean 'log_every_n_steps'\?\)"
    ):
        autolog.autolog(log_every_n_step=1)
    with pytest.raises(TypeError, match=r"'extra_tag' \(did you mean 'extra_tags'\?\)"):
        autolog.autolog(extra_tag={"a": "b"})
    assert registry.enabled_names() == []


def test_a_misspelt_plugin_option_suggests_the_near_one() -> None:
    with pytest.raises(
        TypeError,
        match=r"unknown option 'log_fnal' \(did you mean 'log_final'\?\) for plugin 'toy'; "
        r"valid options: log_every_n_steps, log_models, log_final",
    ):
        autolog.autolog(frameworks=["toy"], toy={"log_fnal": False})
    with pytest.raises(TypeError, match=r"'tyo' \(did you mean 'toy'\?\)"):
        autolog.autolog(tyo={"log_final": False})
    assert registry.enabled_names() == []


def test_a_misspelt_framework_suggests_the_near_one() -> None:
    with pytest.raises(
        ValueError, match=r"unknown framework 'kears' \(did you mean 'keras'\?\); available"
    ):
        autolog.autolog(frameworks=["toy", "kears"])
    with pytest.raises(ValueError, match=r"unknown framework 'zzz'; available plugins: keras, "):
        autolog.autolog(frameworks="zzz")
    assert registry.enabled_names() == []


def test_frameworks_accepts_the_comma_form_of_the_command_line() -> None:
    with pytest.warns(autolog.AutologWarning, match="'toy_future' is not enabled"):
        assert autolog.autolog(frameworks="toy, toy_future") == ["toy"]
    assert autolog.autolog(frameworks="toy,") == ["toy"]
    autolog.disable("toy,toy_future")
    assert registry.enabled_names() == []
    with pytest.raises(ValueError, match=r"unknown framework 'toyy' \(did you mean 'toy'\?\)"):
        autolog.autolog(frameworks="toy,toyy")


# extra_tags are checked in full when autolog() is called --------------------------------


@pytest.mark.parametrize(
    ("tags", "error", "message"),
    [
        ({1: 2}, TypeError, r"extra_tags must map str to str; the item 1: 2 does not \(key: int"),
        ({"a": None}, TypeError, r"the item 'a': None does not \(key: str, value: NoneType\)"),
        ({"a": 3}, TypeError, r"the item 'a': 3 does not \(key: str, value: int\)"),
        (
            {"bad key!": "v"},
            ValueError,
            r"extra_tags key 'bad key!' is not a valid MLflow tag name: names may only contain",
        ),
        ({"../up": "v"}, ValueError, r"'\.\./up' is not a valid MLflow tag name: .*normalized"),
        ({"k" * 251: "v"}, ValueError, r"at most 250 characters"),
        ({"long": "x" * 8001}, ValueError, r"value of 'long' has 8001 characters; .* at most 8000"),
    ],
)
def test_extra_tags_are_checked_as_mlflow_checks_them(tags, error, message) -> None:
    autolog.autolog(frameworks=["toy"], extra_tags={"kept": "yes"})
    with pytest.raises(error, match=message):
        autolog.autolog(frameworks=["toy"], log_models=False, extra_tags=tags)
    enabled = registry.enabled("toy")  # a call that raises changes nothing
    assert dict(enabled.extra_tags) == {"kept": "yes"} and enabled.options.log_models is True


def test_valid_extra_tags_reach_the_run(store) -> None:
    tags = {"team": "vision", "path/like:tag-1.0": "x" * 8000}
    autolog.autolog(frameworks=["toy"], extra_tags=tags)
    import toyfw

    toyfw.Model().fit(1)
    run_tags = store.last_run().tags
    assert run_tags["team"] == "vision" and run_tags["path/like:tag-1.0"] == "x" * 8000
