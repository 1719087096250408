"""What plugin authors test with.

- `capture` routes autolog's writes to an in-memory `MemoryStore` so a test can
  assert on params, metric histories, tags and artifacts without a tracking store.
- `check_plugin` runs the conformance checks every plugin must pass.
- `plugin_info` says what discovery finds for an installed plugin (loaded? requirements
  met? which framework version?).
"""

from autolog.testing.conformance import CheckResult, ConformanceReport, check_plugin, plugin_info
from autolog.testing.memory import MemoryStore, RecordedRun, capture

__all__ = [
    "CheckResult",
    "ConformanceReport",
    "MemoryStore",
    "RecordedRun",
    "capture",
    "check_plugin",
    "plugin_info",
]
