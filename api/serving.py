"""Run the app under uvicorn the one way every command serves it (`grid serve`, `grid demo`,
`grid demo --simulate-days`).

* The event loop is the standard library's ``asyncio``, not ``uvloop``. Measured with ``wrk`` on
  this project's 2-core machine, 200 connections polling set-points back to back: under uvloop a
  few connections wait for many loop turns while others are served (p99 0.47-1.13 s at ~6,400
  req/s, although each answer takes <= 5 ms inside the service); under asyncio the same load is
  served in turn (p99 72-106 ms at ~6,200 req/s, 77-88 ms while a 300-household site re-plans).
  A plain uvicorn app that burns 0.12 ms of CPU per request shows the same (uvloop 0.45-1.0 s,
  asyncio 0.10-0.18 s): it is the loop's order of callbacks under saturation, not this app. With
  16 connections uvloop is ~8 % faster (7,600 vs 7,000 req/s); the tail matters more to pollers.
* No access log: at thousands of polls a second it costs a third of the throughput; request
  counts and latency are in ``/metrics``.
"""

from __future__ import annotations

from typing import Any

EVENT_LOOP = "asyncio"


def run_server(app: Any, host: str, port: int, log_level: str = "info") -> None:
    """Serve `app` on `host`:`port` until stopped (SIGINT/SIGTERM), as described above."""
    import uvicorn

    uvicorn.run(app, host=host, port=port, log_level=log_level, access_log=False, loop=EVENT_LOOP)
