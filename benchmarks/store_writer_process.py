"""A stand-in for an agent that delivers while training runs: the store writes, in a process
of their own.

`keras_overhead.py`'s ``autolog_step_agent`` configuration hands every request autolog
would send to this process over a pipe and waits for its answer, so the training process
keeps its own work (callbacks, accepting values, appending to the run log) and loses the
store's: building rows, SQLAlchemy, SQLite. That is the one thing delivery from the agent
would change for training speed, and what the benchmark measures against delivery from
the training process (the default). Requests are written with autolog's own store writer,
exactly as the training process would write them.

Protocol, one JSON line each way: in ``{"uri", "run", "m", "p", "t"}``, out ``{"ok": n}``
(values written) or ``{"error": "..."}``. Ends at EOF.
"""

from __future__ import annotations

import json
import sys
import threading


def main() -> int:
    from autolog.batching import transport
    from autolog.batching.chunks import Chunk
    from autolog.batching.stores import client_for, writer_for

    never = threading.Event()
    retry = transport.Retry(timeout=30.0, initial_delay=0.05, max_delay=1.0, abort=never)
    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        request = json.loads(line)
        writer = writer_for(client_for(request["uri"], 30.0))
        chunk = Chunk(
            metrics=[tuple(m) for m in request["m"]],
            params=[tuple(p) for p in request["p"]],
            tags=[tuple(t) for t in request["t"]],
        )
        result = transport.send_chunk(writer, request["run"], chunk, retry)
        if result.failure is not None or result.rejected:
            answer = {"error": f"{result.failure} {result.error} {result.rejected}"}
        else:
            answer = {"ok": result.delivered}
        print(json.dumps(answer), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
