"""The options every plugin shares, defined once: name, type, default, help and check.

`autolog.autolog` checks its arguments with them, `autolog.plugin.check_common_options`
checks a plugin's options with them, and ``autolog run`` builds its command-line options
from them (`autolog.cli.common`). A rule changes here, and everywhere at once.

``log_every_n_steps`` has one rule with one documented allowance: ``autolog()`` and the
command line take ``N >= 1`` (or ``None``); a plugin's own options may also take ``0``
where the plugin gives it a meaning (the Estimator plugin: no per-step loss). It is read
only by plugins whose framework has steps; a plugin without steps ignores it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

__all__ = [
    "COMMON_OPTIONS",
    "CommonOption",
    "check_extra_tags",
    "check_log_every_n_steps",
    "check_log_models",
    "check_silent",
]


def check_log_every_n_steps(value: Any, *, plugin: bool = False) -> None:
    """Raise ``TypeError`` unless ``value`` is ``None`` or an int ``>= 1`` (``>= 0`` in a
    plugin's own options, where a plugin may define ``0``)."""
    minimum = 0 if plugin else 1
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        kind = "an int >= 0" if plugin else "a positive int"
        raise TypeError(f"log_every_n_steps must be {kind} or None, got {value!r}")


def check_log_models(value: Any, *, plugin: bool = False) -> None:
    """Raise ``TypeError`` unless ``value`` is a bool (or ``None``, "inherit", in a plugin's
    own options)."""
    if plugin and value is None:
        return
    if not isinstance(value, bool):
        allowed = "True, False or None" if plugin else "True or False"
        raise TypeError(f"log_models must be {allowed}, got {value!r}")


def check_silent(value: Any, *, plugin: bool = False) -> None:
    """Raise ``TypeError`` unless ``value`` is a bool."""
    if not isinstance(value, bool):
        raise TypeError(f"silent must be True or False, got {value!r}")


def check_extra_tags(value: Any, *, plugin: bool = False) -> tuple[tuple[str, str], ...]:
    """Every tag checked as MLflow would check it, so none is refused later, run by run.

    Returns the tags as ``((key, value), ...)``; raises ``TypeError`` for a key or value
    that is not a ``str`` and ``ValueError`` for one MLflow refuses, naming the tag.
    """
    from autolog.batching import validation  # MLflow's rules; only when tags are given

    if value is None:
        return ()
    if not isinstance(value, Mapping):
        raise TypeError(f"extra_tags must be a mapping of str to str, got {value!r}")
    tags: list[tuple[str, str]] = []
    for key, tag in value.items():
        if not isinstance(key, str) or not isinstance(tag, str):
            raise TypeError(
                f"extra_tags must map str to str; the item {key!r}: {tag!r} does not "
                f"(key: {type(key).__name__}, value: {type(tag).__name__})"
            )
        checked = validation.check_key(key)
        if isinstance(checked, validation.Invalid):
            raise ValueError(
                f"extra_tags key {key!r} is not a valid MLflow tag name: {checked.reason}"
            )
        if len(tag) > validation.MAX_TAG_VALUE_LENGTH:
            raise ValueError(
                f"extra_tags value of {key!r} has {len(tag)} characters; MLflow tags hold "
                f"at most {validation.MAX_TAG_VALUE_LENGTH}"
            )
        tags.append((checked, str(tag)))
    return tuple(tags)


@dataclasses.dataclass(frozen=True)
class CommonOption:
    """One shared option.

    Attributes:
        name: the keyword of `autolog.autolog` (and, for the first two, the field of
            `autolog.PluginOptions`).
        type: the Python type, as written in the docs.
        default: the default of `autolog.autolog`.
        help: one line, shown by ``autolog run --help``.
        check: ``check(value, plugin=False)`` raises naming the option when the value is
            wrong; ``plugin=True`` applies the rule for a plugin's own options.
        cli: the ``autolog run`` option: ``"flag"`` (``--silent``), ``"switch"``
            (``--log-models/--no-log-models``), ``"int"`` (``--log-every-n-steps N``),
            ``"pairs"`` (``--tag KEY=VALUE``, repeatable).
        cli_name: the option's name on the command line, without dashes.
        metavar: what the command line shows for its value.
        minimum: the smallest value on the command line, for ``"int"``.
    """

    name: str
    type: str
    default: Any
    help: str
    check: Callable[..., Any]
    cli: str
    cli_name: str
    metavar: str | None = None
    minimum: int | None = None

    def validate(self, value: Any, *, plugin: bool = False) -> Any:
        """Run `check` on ``value``; returns what the check returns (tags: the pairs)."""
        return self.check(value, plugin=plugin)


COMMON_OPTIONS: dict[str, CommonOption] = {
    option.name: option
    for option in (
        CommonOption(
            name="log_every_n_steps",
            type="int | None",
            default=None,
            help="Also log per-step metrics every N steps (default: per epoch only).",
            check=check_log_every_n_steps,
            cli="int",
            cli_name="log-every-n-steps",
            metavar="N",
            minimum=1,
        ),
        CommonOption(
            name="log_models",
            type="bool",
            default=True,
            help="Log the trained model (default: log it).",
            check=check_log_models,
            cli="switch",
            cli_name="log-models",
        ),
        CommonOption(
            name="extra_tags",
            type="Mapping[str, str] | None",
            default=None,
            help="A tag on every run; repeatable.",
            check=check_extra_tags,
            cli="pairs",
            cli_name="tag",
            metavar="KEY=VALUE",
        ),
        CommonOption(
            name="silent",
            type="bool",
            default=False,
            help="No warnings from autolog.",
            check=check_silent,
            cli="flag",
            cli_name="silent",
        ),
    )
}
"""The shared options by name."""
