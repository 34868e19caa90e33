"""Interpreter settings for a hub process that ingests at full speed (``safety-hub run``).

- The cyclic garbage collector: every accepted reading is a few short-lived objects, so at
  default thresholds (a young collection every 700 allocations) the collector walks the
  young generation thousands of times a second, and its older generations, holding the
  registry, the rule engine and the alarm state, often enough to cost more than decoding.
  What exists once the hub is built is moved out of the collector's view (``gc.freeze``: it
  lives as long as the process anyway), and young collections run every ``GC_YOUNG``
  allocations. Reference counting frees the readings themselves; the collector only finds
  cycles, and still does.
- The switch interval: how long a thread that computes may keep the GIL while another one
  waits for it. A batch of bulk readings computes for tens of ms; the thread that publishes
  an alarm waits at most this long for its turn (Python's default is 5 ms).

Measured in bench/ingest_e2e.py and bench/alarm_latency.py (docs/benchmarks.md).
"""

from __future__ import annotations

import contextlib
import gc
import sys
from collections.abc import Iterable
from pathlib import Path

from safety_hub.logs import setup_logging

GC_YOUNG = 20_000
"""allocations between young-generation collections (Python's default: 700)"""
SWITCH_INTERVAL_S = 0.001
"""the longest a computing thread keeps the GIL while another waits (Python's default: 5 ms)"""
SINK_PROCESS_NAME = "safety-hub-sink"
"""the sink's child process (runtime/sink_process.py), as ``top`` shows it"""


def tune_for_ingest() -> None:
    """Freeze what exists now out of the collector's view and set the thresholds and the
    switch interval above. For a process that runs one hub; call it once the hub is built."""
    gc.collect()
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(GC_YOUNG, older, oldest)
    sys.setswitchinterval(SWITCH_INTERVAL_S)


def name_process(name: str) -> None:
    """Name this process as ``top`` and ``ps -o comm`` show it (Linux, at most 15 bytes; the
    hub's child processes all run the same interpreter command line otherwise)."""
    with contextlib.suppress(OSError):
        Path("/proc/self/comm").write_text(name[:15])


def child_setup(name: str, *, level: str, fmt: str, secrets: Iterable[str]) -> None:
    """What a child process of the hub does first: its name and the hub's logging. (Not the
    collector's thresholds: with them the sink child's peak memory grew by about 90 MiB.)"""
    name_process(name)
    setup_logging(level, fmt, secrets=secrets)
