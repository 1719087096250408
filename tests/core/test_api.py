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
    assert not any(m.startswith("autolog plugin 'toy_future'") for m in messages)


def test_unknown_framework_lists_the_available_plugins() -> None:
    with pytest.raises(ValueError, match=r"unknown framework\(s\) \['nope'\].*'toy'"):
        autolog.autolog(frameworks=["toy", "nope"])
    assert registry.enabled_names() == []  # nothing changed


def test_unknown_option_names_the_valid_ones() -> None:
    with pytest.raises(TypeError, match=r"unknown option\(s\) \['colour'\].*log_final"):
        autolog.autolog(frameworks=["toy"], toy={"colour": "red"})
    with pytest.raises(TypeError, match="unexpected keyword argument 'torch'"):
        autolog.autolog(torch={"x": 1})
    with pytest.raises(TypeError, match="must be a mapping"):
        autolog.autolog(toy=["log_final"])
    assert registry.enabled_names() == []


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"frameworks": 3}, "frameworks must be a list"),
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
