"""Scenarios: simulated incidents as files (data, like the rule packs), and their outcome.

```python
from safety_hub.scenarios import load_scenario

scenario = load_scenario("scenarios/chlorine_tank_leak.yaml")  # or YAML text; ScenarioError
scenario.plant, scenario.pack, scenario.model  # its plant, rule pack and validated file
```

- ``loader``: load and validate a file (every problem as ``file:line:col: ...``); ``schema``:
  its format; ``expectations``: ``expect:`` checked against an alarm timeline;
- ``report``: the outcome (``ReplayResult``, ``TimelineRow``) as a table, verdict, JSON report;
- ``recording``: recordings of a live MQTT stream.

Nothing here runs a scenario: the field it simulates is ``simulators.world`` (``World(scenario)
.messages()``, ``readings_of(scenario)``), and replay through an in-process hub is
``safety_hub.runtime.replay`` (``replay``, ``run_scenario``). Format: docs/scenarios.md.
"""

from __future__ import annotations

from safety_hub.scenarios.loader import Scenario, ScenarioError, load_scenario
from safety_hub.scenarios.report import ReplayResult, TimelineRow, format_clock

__all__ = [
    "ReplayResult",
    "Scenario",
    "ScenarioError",
    "TimelineRow",
    "format_clock",
    "load_scenario",
]
