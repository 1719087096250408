"""Zero-code autologging for ``autolog run``: Python imports this at start-up.

It removes its own folder from ``PYTHONPATH`` (so the script's child processes are not
instrumented unless they ask to be), runs the user's own ``sitecustomize`` if there is one,
then enables autologging with the options ``autolog run`` passed through the environment.
Nothing here may stop the user's program from starting.
"""

import importlib
import json
import os
import sys
import warnings

_HERE = os.path.dirname(os.path.abspath(__file__))


def _restore_environment() -> None:
    os.environ["PYTHONPATH"] = os.environ.pop("AUTOLOG_RUNNER_PREVIOUS_PYTHONPATH", "")
    if not os.environ["PYTHONPATH"]:
        del os.environ["PYTHONPATH"]
    os.environ.pop("AUTOLOG_RUNNER_DIR", None)


def _chain_user_sitecustomize() -> None:
    this = sys.modules.get("sitecustomize")
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != _HERE]
    del sys.modules["sitecustomize"]
    try:
        importlib.import_module("sitecustomize")
    except ModuleNotFoundError as exc:
        if exc.name != "sitecustomize":
            raise
    finally:
        if "sitecustomize" not in sys.modules and this is not None:
            sys.modules["sitecustomize"] = this


def _enable() -> None:
    import autolog
    from autolog import env

    options = json.loads(os.environ.pop(env.AUTOLOG_OPTIONS, "") or "{}")
    options = {k: v for k, v in options.items() if v is not None}
    frameworks = env.requested_frameworks()
    os.environ.pop(env.AUTOLOG_FRAMEWORKS, None)
    autolog.autolog(frameworks=frameworks, **options)


if os.environ.get("AUTOLOG_RUNNER_DIR") == _HERE:
    _restore_environment()
    try:
        _chain_user_sitecustomize()
    except Exception as exc:  # the user's sitecustomize failing is reported like Python would
        warnings.warn(f"sitecustomize failed: {exc!r}", RuntimeWarning, stacklevel=1)
    try:
        _enable()
    except Exception as exc:
        warnings.warn(f"autolog run could not enable autologging: {exc!r}", stacklevel=1)
