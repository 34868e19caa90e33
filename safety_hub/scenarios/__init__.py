"""Scenarios: simulated incidents as files, replayed through the real hub on a virtual clock.

```python
from safety_hub.scenarios import load_scenario, replay, run_scenario

result = run_scenario("scenarios/chlorine_tank_leak.yaml")  # or YAML text
result.passed, result.failures  # expectations
result.timeline  # every alarm transition (TimelineRow), in order
result.alarms  # the alarm list at the end, as the API shows it

scenario = load_scenario("scenarios/chlorine_tank_leak.yaml")  # raises ScenarioError
for pub in scenario.messages():  # contract v1 MQTT messages with their send time
    pub.at_ms, pub.topic, pub.payload
for at_ms, reading in scenario.readings():  # decoded readings (Reading) with their send time
    ...
```

Format: docs/scenarios.md. Device models: ``simulators/`` (docs/simulators.md).
"""

from __future__ import annotations

from pathlib import Path

from safety_hub.scenarios.loader import Scenario, ScenarioError, load_scenario
from safety_hub.scenarios.replay import ReplayResult, TimelineRow, format_clock, replay


def run_scenario(source: str | Path) -> ReplayResult:
    """Load a scenario (a file path, or YAML text) and replay it."""
    return replay(load_scenario(source))


__all__ = [
    "ReplayResult",
    "Scenario",
    "ScenarioError",
    "TimelineRow",
    "format_clock",
    "load_scenario",
    "replay",
    "run_scenario",
]
