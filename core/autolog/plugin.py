"""The plugin contract: what a framework plugin declares, validated when it is declared.

A plugin is a subclass of `Plugin` that names its framework requirement, the
functions to wrap (`Patch` specs) and an options dataclass. It holds no patching,
threading or MLflow code: the core reads the declaration and does the work.

Hooks receive a `Call`, which gives them the bound arguments, the instance, the
plugin's options and a `RunSink` to log through. A hook never sees MLflow.
"""

from __future__ import annotations

import dataclasses
import os
import re
import tempfile
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, Literal, Protocol, runtime_checkable

from packaging.requirements import InvalidRequirement, Requirement

from autolog import safety
from autolog.options import COMMON_OPTIONS

if TYPE_CHECKING:
    import inspect
    from types import TracebackType

__all__ = [
    "Call",
    "Patch",
    "Plugin",
    "PluginDeclarationError",
    "PluginOptions",
    "RunSink",
    "check_declaration",
    "guard",
    "handed_over_folder",
]

_TARGET = re.compile(
    r"^(?P<module>[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*):(?P<path>[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*)$"
)
_PLUGIN_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


class guard:
    """Run plugin code that the framework calls by itself, so it never breaks training.

    Hooks declared on a `Patch` are guarded by the core. Code the framework calls
    directly (a callback method, a training hook handed to the framework) is not: wrap
    its body in ``with guard(plugin, site):``. An exception is swallowed and reported
    once per ``site`` as an `AutologWarning` naming the plugin and the site; under
    ``AUTOLOG_TESTING=1`` it propagates, so the plugin's tests see it. A guard holds no
    state while in use: one instance may be reused, also across threads, which keeps
    per-step callbacks cheap.

        def on_epoch_end(self, epoch, logs=None):
            with guard("myplugin", "callback on_epoch_end"):
                self.sink.log_metrics(logs, step=epoch)

    Attributes:
        plugin: the plugin's name, shown in the warning.
        site: what the guarded code does (``"callback on_epoch_end"``), shown in the
            warning; one warning is shown per site.
    """

    __slots__ = ("plugin", "site")

    def __init__(self, plugin: str, site: str) -> None:
        self.plugin = plugin
        self.site = site

    def __enter__(self) -> None:
        return None

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool:
        if exc is None or not isinstance(exc, Exception):
            return False  # KeyboardInterrupt and the like are the user's
        safety.report_failure(self.plugin, self.site, exc)
        return True


class PluginDeclarationError(TypeError):
    """A plugin or patch declaration breaks the contract (raised when it is declared)."""


@runtime_checkable
class RunSink(Protocol):
    """Where hooks log to: the batching layer for one run (or an in-memory sink in tests).

    A hook reaches it as `Call.sink`. Every method only enqueues and returns at once; none
    of them waits for the tracking store, and none raises for a value the store would
    refuse: such a value is dropped and reported once as a warning naming it. Keys and
    values follow MLflow's rules (params and tags are stored as strings, metrics as
    floats); param and tag values that look like credentials are redacted.

    Temporary files the plugin wrote for the run (a model snapshot, a checkpoint) are
    handed over rather than copied: `log_temp_artifacts`, and ``temp_dir`` of `log_model`,
    give the folder to the sink, which deletes it when it is done with it. A plugin so
    never keeps a record of its files, and never needs an exit hook to clean them up.

    Helpers built on these methods, in `autolog`: `autolog.flatten_params` (a params
    mapping or list of pairs, nested dicts flattened, for `log_params`) and
    `autolog.log_dict` (a dict as a JSON or YAML artifact, through `log_text`).
    """

    @property
    def run_id(self) -> str | None:
        """The MLflow run this sink writes to (``None`` when there is no run)."""
        ...

    def log_metric(
        self, key: str, value: Any, step: int | None = None, timestamp: int | None = None
    ) -> None:
        """Log one metric value.

        Args:
            key: the metric's name.
            value: a number (anything ``float()`` accepts, such as a NumPy scalar).
            step: the training step or epoch the value belongs to (MLflow's default, 0,
                when omitted).
            timestamp: milliseconds since the epoch (now when omitted).
        """
        ...

    def log_metrics(self, metrics: Mapping[str, Any], step: int | None = None) -> None:
        """Log several metric values at one step: ``{name: number}``."""
        ...

    def log_param(self, key: str, value: Any) -> None:
        """Log one param; the value is stored as a string (``str(value)``).

        A param has one value per run: logging a different value under the same key later
        is reported and the first value kept.
        """
        ...

    def log_params(self, params: Mapping[str, Any]) -> None:
        """Log several params: ``{name: value}``, each as `log_param` would.

        A framework's params often come nested or as a list of pairs:
        ``sink.log_params(autolog.flatten_params(params))`` flattens them first
        (``{"booster": {"eta": 0.3}}`` is logged as ``booster.eta``).
        """
        ...

    def set_tag(self, key: str, value: Any) -> None:
        """Set one run tag (stored as a string); a later value replaces the earlier one."""
        ...

    def set_tags(self, tags: Mapping[str, Any]) -> None:
        """Set several run tags: ``{name: value}``."""
        ...

    def log_artifact(self, local_path: str, artifact_path: str | None = None) -> None:
        """Upload one local file (or directory) into the run's artifacts.

        Args:
            local_path: the file to upload. Copy it first if you will change or delete it:
                the upload happens later, off the training thread.
            artifact_path: the directory inside the run's artifacts (the root when
                omitted).
        """
        ...

    def log_artifacts(self, local_dir: str, artifact_path: str | None = None) -> None:
        """Upload the contents of a local directory into the run's artifacts
        (under ``artifact_path`` when given)."""
        ...

    def log_temp_artifacts(self, local_path: str, artifact_path: str | None = None) -> None:
        """Hand over a file or directory made for the run, in a temporary folder of its own.

        Uploaded as `log_artifact` uploads a file (``<artifact_path>/<name>``) or as
        `log_artifacts` uploads a directory (its contents under ``artifact_path``), but
        the folder enclosing ``local_path`` belongs to the sink from the call on: the sink
        deletes it once the upload is done (or failed for good), or moves it into the
        spool while the store is unreachable. The plugin keeps no record of it, writes
        nothing more into it and never deletes it itself::

            folder = tempfile.mkdtemp(prefix="myplugin-")
            model.save(os.path.join(folder, "best.keras"))
            sink.log_temp_artifacts(os.path.join(folder, "best.keras"), "checkpoints")

        Raises ``ValueError`` (naming the path) when ``local_path`` does not exist, or when
        the enclosing folder is one that is not the plugin's to give away: the system
        temp directory itself, the current directory, the home directory or a root.
        """
        ...

    def log_text(self, text: str, artifact_file: str) -> None:
        """Store ``text`` as the artifact ``artifact_file`` (a path inside the run's
        artifacts, such as ``"model_summary.txt"``).

        For a dict, ``autolog.log_dict(sink, data, "feature_importance.json")`` writes it
        as JSON (or YAML, for a ``.yaml`` name) through this method.
        """
        ...

    def log_model(
        self,
        flavor: str,
        loader: Callable[[], Any],
        artifact_path: str = "model",
        **save_kwargs: Any,
    ) -> None:
        """Log a model as an MLflow LoggedModel of ``flavor``, packaged off the training thread.

        ``loader`` returns the object to save (typically by loading a snapshot the hook
        wrote); the core then calls ``mlflow.<flavor>.save_model`` and uploads the result as
        a LoggedModel named ``artifact_path`` whose source run is the run. It loads with
        ``mlflow.<flavor>.load_model("models:/<model_id>")`` and shows in the run's Models
        tab; the run's final metric values are linked to it. Keyword arguments the core
        understands besides ``save_model``'s: ``signature`` (plain data in MLflow's schema
        format), ``input_example`` (a few rows of the training data: an array, a dict of
        arrays or a DataFrame), ``requirements`` (import names to pin) and ``temp_dir``.

        ``temp_dir`` hands over the temporary folder ``loader`` reads from (the snapshot the
        hook wrote), as `log_temp_artifacts` hands over a file: the sink deletes it once
        the model is packaged, or could not be; the plugin keeps no record of it. (The
        in-memory sink of `autolog.testing` keeps it until its ``capture`` block ends,
        since the model it records may still read it.)
        """
        ...

    def log_model_metrics(
        self, metrics: Mapping[str, Any], step: int | None = None, *, dataset: str | None = None
    ) -> None:
        """Log metrics that measure the model last logged in this run (``evaluate()``).

        Logged to the run exactly as `log_metrics` does, and linked to the run's
        LoggedModel, so they show on the model's page too. ``dataset`` names the context
        of a dataset this sink logged with `log_dataset` (``"eval"``): the metrics are
        then recorded as measured on it (its name and digest), as MLflow shows them.
        Without a model in the run they are plain run metrics.
        """
        ...

    def log_dataset(
        self,
        features: Any,
        *,
        context: str,
        targets: Any = None,
        name: str | None = None,
    ) -> None:
        """Record data the call trained or evaluated on as an MLflow dataset input of the run.

        ``features`` and ``targets`` are the data as the user passed them: numpy arrays (or
        anything ``numpy.asarray`` takes), dicts of them, pandas DataFrames. The core builds
        the dataset (digest, schema) off the training thread; data it cannot describe
        without reading it again (generators, pipelines) is skipped. ``context`` is the
        input's ``mlflow.data.context`` tag: ``"train"``, ``"validation"`` or ``"eval"``.
        Call it once per call and input; the data must not be changed in place afterwards.
        """
        ...

    def send_pending(self) -> None:
        """Start sending what is buffered, without waiting; returns at once.

        Logged values otherwise wait to fill a request. A hook that knows training has
        just taken its last step calls this so the last values travel while the
        framework still wraps up (saves a checkpoint, closes its session), instead of
        after. The core does the same when the patched call returns.
        """
        ...


def handed_over_folder(
    local_path: str, *, enclosing: bool = True, site: str = "log_temp_artifacts"
) -> str:
    """The folder a sink takes over with a temporary file, checked first.

    For sink implementations: the folder enclosing ``local_path``
    (`RunSink.log_temp_artifacts`), or ``local_path`` itself with ``enclosing=False``
    (``temp_dir`` of `RunSink.log_model`), as an absolute path. Raises ``ValueError``
    naming ``site`` and the path when the path does not exist, or when deleting the folder
    would delete other people's files: it is the system temp directory, the current or
    home directory, or a folder holding one of them (a filesystem root, ``/home``).
    """
    path = os.path.abspath(os.fspath(local_path))
    if not os.path.exists(path):
        raise ValueError(f"{site}: {local_path!r} does not exist")
    folder = os.path.dirname(path) if enclosing else path
    shared = (tempfile.gettempdir(), os.getcwd(), os.path.expanduser("~"))
    if any(_holds(folder, os.path.abspath(place)) for place in shared):
        raise ValueError(
            f"{site}: {local_path!r} is not in a temporary folder of its own: the sink would "
            f"delete {folder!r}; make one with tempfile.mkdtemp() and write the file there"
        )
    return folder


def _holds(folder: str, place: str) -> bool:
    """Whether ``place`` is ``folder`` or inside it."""
    try:
        return os.path.commonpath([folder, place]) == folder
    except ValueError:  # different drives
        return False


Hook = Callable[["Call"], None]
AfterHook = Callable[["Call", Any], None]
ErrorHook = Callable[["Call", BaseException], None]


@dataclasses.dataclass(frozen=True)
class Patch:
    """Declarative spec of one wrapped function.

    Attributes:
        target: ``"module:Qualname.attr"``: the module is never imported by autolog; the
            patch is applied when the user imports it. For a class attribute the patch lands
            on the class in the MRO that defines it.
        capture: argument names whose values are logged as params when the call owns or
            joins a run. Bound through the signature, so positional and keyword calls
            capture the same. Arguments left at their default are captured with the default.
        before: ``before(call)``: runs before the wrapped call; may replace arguments
            through `Call.replace`.
        after: ``after(call, result)``: runs after a successful call.
        on_error: ``on_error(call, exc)``: runs when the wrapped call raised.
        owns_run: the outermost such call starts an MLflow run (or uses the user's
            active run) and ends it when the call returns.
        reuse_instance_run: with ``owns_run``: log into the run of the last run-owning call
            made on the same instance (``evaluate`` after ``fit``); start a new run when
            there was none.
        nested: what a call does when it happens inside another patched call of the
            same plugin: ``"skip"`` runs the original untouched (a ``fit`` that calls
            ``fit`` logs once), ``"join"`` runs the hooks and logs into the outer run.
        optional: the target may be absent in some framework versions; absence is not
            reported as an error.
        reexported_by: the other modules that re-export a module-level target
            (``from xgboost.training import train`` in ``xgboost/__init__.py``): each item is
            a module name, or ``"module:name"`` when the re-export goes by another name.
            Patching a function replaces one binding; a copy that another module took at
            import would still call the original. The registry patches every such binding
            with the same wrapper once its module is imported, and puts back the original
            in each on disable. The conformance kit fails a plugin whose target is reachable,
            unpatched, under another public name of the framework's package.
    """

    target: str
    capture: Sequence[str] = ()
    before: Hook | None = None
    after: AfterHook | None = None
    on_error: ErrorHook | None = None
    owns_run: bool = False
    reuse_instance_run: bool = False
    nested: Literal["skip", "join"] = "skip"
    optional: bool = False
    reexported_by: Sequence[str] = ()

    def __post_init__(self) -> None:
        match = _TARGET.match(self.target)
        if match is None:
            raise PluginDeclarationError(
                f"Patch target {self.target!r} is not of the form 'package.module:Qualname.attr'"
            )
        self._check_reexports()
        if isinstance(self.capture, str):
            raise PluginDeclarationError(
                f"Patch({self.target!r}).capture must be a sequence of argument names, "
                f"not the string {self.capture!r}"
            )
        object.__setattr__(self, "capture", tuple(self.capture))
        for name in self.capture:
            if not isinstance(name, str) or not name.isidentifier():
                raise PluginDeclarationError(
                    f"Patch({self.target!r}).capture holds {name!r}, which is not an argument name"
                )
        for hook_name in ("before", "after", "on_error"):
            hook = getattr(self, hook_name)
            if hook is not None and not callable(hook):
                raise PluginDeclarationError(
                    f"Patch({self.target!r}).{hook_name} must be callable, got {hook!r}"
                )
        if self.nested not in ("skip", "join"):
            raise PluginDeclarationError(
                f"Patch({self.target!r}).nested must be 'skip' or 'join', got {self.nested!r}"
            )
        if self.reuse_instance_run and not self.owns_run:
            raise PluginDeclarationError(
                f"Patch({self.target!r}): reuse_instance_run needs owns_run=True"
            )

    def _check_reexports(self) -> None:
        if isinstance(self.reexported_by, str):
            raise PluginDeclarationError(
                f"Patch({self.target!r}).reexported_by must be a sequence of module names, "
                f"not the string {self.reexported_by!r}; write ({self.reexported_by!r},)"
            )
        object.__setattr__(self, "reexported_by", tuple(self.reexported_by))
        if self.reexported_by and len(self.path) != 1:
            raise PluginDeclarationError(
                f"Patch({self.target!r}).reexported_by is for module-level functions: a "
                "method is patched on its class, which every re-export of the class shares"
            )
        for item in self.reexported_by:
            module, sep, name = item.partition(":") if isinstance(item, str) else ("", "", "")
            if not _TARGET.match(f"{module}:{name if sep else 'x'}"):
                raise PluginDeclarationError(
                    f"Patch({self.target!r}).reexported_by holds {item!r}, which is not a "
                    "module name or 'module:name'"
                )

    @property
    def reexports(self) -> tuple[tuple[str, str], ...]:
        """`reexported_by` as ``(module, attribute)`` pairs."""
        pairs = []
        for item in self.reexported_by:
            module, sep, name = item.partition(":")
            pairs.append((module, name if sep else self.path[-1]))
        return tuple(pairs)

    @property
    def module(self) -> str:
        """The module part of `target`: ``"keras.src.models.model"``."""
        return self.target.partition(":")[0]

    @property
    def path(self) -> tuple[str, ...]:
        """The attribute path of `target` inside its module: ``("Model", "fit")``."""
        return tuple(self.target.partition(":")[2].split("."))


@dataclasses.dataclass
class PluginOptions:
    """Options every plugin has. A plugin extends this dataclass with its own fields.

    ``None`` means "inherit the value given to `autolog.autolog`".

    Attributes:
        log_every_n_steps: Log per-step metrics every this many steps (``None``: per epoch
            only, or as `autolog.autolog` says). Read only by plugins whose framework has
            steps; a plugin without steps (scikit-learn) ignores it.
        log_models: Whether to save the trained model with the run (``None``: as
            `autolog.autolog` says).
    """

    log_every_n_steps: int | None = None
    log_models: bool | None = None


def check_common_options(options: PluginOptions, *, where: str) -> None:
    """Raise ``TypeError`` when a shared option has a value of the wrong kind.

    The rules are `autolog.options`' (for a plugin's own options: ``None`` inherits, and
    ``log_every_n_steps=0`` is let through for a plugin that defines it, as the Estimator
    plugin does; a plugin that does not may refuse it in its options' ``__post_init__``).
    """
    for name in ("log_every_n_steps", "log_models"):
        try:
            COMMON_OPTIONS[name].validate(getattr(options, name), plugin=True)
        except TypeError as exc:
            raise TypeError(f"{where}: {exc}") from None


class Call:
    """One intercepted call, as hooks see it.

    The core makes one `Call` per call of a patched function and hands the same object to
    the patch's ``before``, ``after`` and ``on_error`` hooks. ``arguments`` holds the
    arguments the caller passed, by parameter name. Hooks read them with `get` (which
    falls back to the signature default) and change them with `replace`; the caller's
    own objects are never mutated by the core.

    Attributes:
        plugin: the `Plugin` instance whose patch this is.
        patch: the `Patch` that wrapped the called function.
        instance: ``self`` of the call for a method (the model whose ``fit`` was called),
            else ``None``.
        options: the plugin's options for this call: its `PluginOptions` subclass, with
            the values given to `autolog.autolog` filled in.
        sink: the `RunSink` of the run this call owns or joins: where hooks log. (Hooks
            only run for calls that log into a run; ``None`` appears only in `Call`
            objects made outside the core, such as a plugin's own unit tests.)
        state: a dict private to this call, for hooks to hand values to each other
            (``before`` stores a callback, ``after`` reads it back).
        result: what the wrapped function returned (``None`` until it has returned).
    """

    __slots__ = (
        "_bound",
        "_signature",
        "instance",
        "options",
        "patch",
        "plugin",
        "result",
        "sink",
        "state",
    )

    def __init__(
        self,
        *,
        plugin: Plugin,
        patch: Patch,
        instance: Any,
        bound: inspect.BoundArguments,
        signature: inspect.Signature,
        options: PluginOptions,
        sink: RunSink | None,
    ) -> None:
        self.plugin = plugin
        self.patch = patch
        self.instance = instance
        self.options = options
        self.sink = sink
        self.state: dict[str, Any] = {}
        self.result: Any = None
        self._bound = bound
        self._signature = signature

    @property
    def arguments(self) -> Mapping[str, Any]:
        """The explicitly passed arguments (``**kwargs`` stay folded under their name)."""
        return dict(self._bound.arguments)

    @property
    def run_id(self) -> str | None:
        """The MLflow run this call logs into (``None`` when it logs into none)."""
        return None if self.sink is None else self.sink.run_id

    def get(self, name: str, default: Any = None) -> Any:
        """An argument's value: as passed, else the signature default, else ``default``."""
        if name in self._bound.arguments:
            return self._bound.arguments[name]
        param = self._signature.parameters.get(name)
        if param is not None and param.default is not param.empty:
            return param.default
        var_kw = self._var_keyword_name()
        if var_kw is not None:
            return self._bound.arguments.get(var_kw, {}).get(name, default)
        return default

    def passed(self, name: str) -> bool:
        """Whether the caller gave this argument explicitly."""
        if name in self._bound.arguments:
            return True
        var_kw = self._var_keyword_name()
        return var_kw is not None and name in self._bound.arguments.get(var_kw, {})

    def replace(self, name: str, value: Any) -> None:
        """Call the wrapped function with ``value`` for argument ``name``.

        Works the same whether the caller passed it positionally, by keyword or not at all.
        """
        if name in self._signature.parameters:
            kind = self._signature.parameters[name].kind
            if kind in (kind.VAR_POSITIONAL, kind.VAR_KEYWORD):
                raise ValueError(f"cannot replace the variadic argument {name!r}")
            self._bound.arguments[name] = value
            return
        var_kw = self._var_keyword_name()
        if var_kw is None:
            raise KeyError(f"{self.patch.target} takes no argument named {name!r}")
        extra = dict(self._bound.arguments.get(var_kw, {}))
        extra[name] = value
        self._bound.arguments[var_kw] = extra

    def call_args(self) -> tuple[tuple[Any, ...], dict[str, Any]]:
        """The positional and keyword arguments to call the wrapped function with."""
        return tuple(self._bound.args), dict(self._bound.kwargs)

    def _var_keyword_name(self) -> str | None:
        for param in self._signature.parameters.values():
            if param.kind is param.VAR_KEYWORD:
                return param.name
        return None


class Plugin:
    """Base class of every autolog plugin.

    Subclasses set the class attributes below. They are validated when the subclass is
    created, so a broken plugin fails at import with a message naming it. Installed, a
    plugin is found through its entry point; ``autolog.autolog(plugins=[MyPlugin])``
    enables one that is not installed, for trying or testing it.

    What a plugin needs beyond the declaration, from `autolog`: `autolog.lazy_subclass`
    (a callback class deriving from a framework base the module may not import),
    `autolog.flatten_params` and `autolog.log_dict` (see `RunSink`), `autolog.guard` (for
    code the framework calls by itself).

    Attributes:
        name: the entry-point name: the key in ``frameworks=``, for options and in
            ``AUTOLOG_DISABLED_PLUGINS``.
        requires: PEP 508 requirements on installed distributions, checked from metadata
            without importing them. Each item may also be a tuple of alternatives, any one of
            which suffices.
        patches: the functions to wrap.
        options_type: a dataclass subclassing `PluginOptions`.
        framework: the distribution whose version ``autolog plugins`` shows.
    """

    name: ClassVar[str]
    requires: ClassVar[Sequence[str | tuple[str, ...]]] = ()
    patches: ClassVar[Sequence[Patch]] = ()
    options_type: ClassVar[type[PluginOptions]] = PluginOptions
    framework: ClassVar[str | None] = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.__dict__.get("_abstract", False):
            return
        check_declaration(cls)
        if cls.framework is None and cls.requires:
            first = cls.requires[0]
            cls.framework = Requirement(first if isinstance(first, str) else first[0]).name

    # Overridable behaviour -------------------------------------------------------------

    def is_chief(self) -> bool:
        """Whether this process writes to MLflow (``False`` on non-chief workers)."""
        return True

    # Helpers the core uses ---------------------------------------------------------------

    @classmethod
    def option_names(cls) -> list[str]:
        """The names of the plugin's options (the fields of `options_type`)."""
        return [f.name for f in dataclasses.fields(cls.options_type)]

    @classmethod
    def make_options(cls, given: Mapping[str, Any] | None = None) -> PluginOptions:
        """Build the options object, raising ``TypeError`` naming the valid options."""
        given = dict(given or {})
        valid = cls.option_names()
        unknown = sorted(set(given) - set(valid))
        if unknown:
            raise TypeError(
                f"unknown option(s) {unknown} for plugin {cls.name!r}; valid options: {valid}"
            )
        options = cls.options_type(**given)
        check_common_options(options, where=f"options for plugin {cls.name!r}")
        return options


def check_declaration(cls: type[Plugin]) -> None:
    """Raise `PluginDeclarationError` naming ``cls`` when its declaration breaks the contract.

    Run when a `Plugin` subclass is created, and again when a class is handed to
    ``autolog.autolog(plugins=[...])`` (its attributes may have changed since): the name
    is a lowercase identifier, every ``requires`` item a PEP 508 requirement, ``patches``
    a sequence of distinct `Patch` targets, ``options_type`` a `PluginOptions` dataclass.
    """
    where = f"{cls.__module__}.{cls.__qualname__}"
    name = getattr(cls, "name", None)
    if not isinstance(name, str) or not _PLUGIN_NAME.match(name):
        raise PluginDeclarationError(
            f"{where}.name must be a lowercase identifier like 'keras', got {name!r}"
        )
    for req in cls.requires:
        for alt in (req,) if isinstance(req, str) else req:
            try:
                Requirement(alt)
            except (InvalidRequirement, TypeError) as exc:
                raise PluginDeclarationError(
                    f"{where}.requires holds {alt!r}, not a PEP 508 requirement: {exc}"
                ) from exc
    patches = cls.patches
    if isinstance(patches, (Patch, str)) or not isinstance(patches, Sequence):
        raise PluginDeclarationError(f"{where}.patches must be a sequence of Patch")
    for patch in patches:
        if not isinstance(patch, Patch):
            raise PluginDeclarationError(f"{where}.patches holds {patch!r}, not a Patch")
    targets = [p.target for p in patches]
    duplicates = sorted({t for t in targets if targets.count(t) > 1})
    if duplicates:
        raise PluginDeclarationError(f"{where}.patches wraps {duplicates} more than once")
    opts = cls.options_type
    if not (
        isinstance(opts, type)
        and issubclass(opts, PluginOptions)
        and dataclasses.is_dataclass(opts)
    ):
        raise PluginDeclarationError(
            f"{where}.options_type must be a dataclass subclassing autolog.PluginOptions"
        )
