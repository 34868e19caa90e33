"""Runtime: what runs a hub, and the wiring that builds it.

- ``hub``: the composition root (``Hub``, ``Storage``, ``build_storage``): builds the hub from
  settings and wires the connectors to the core; only the CLI, the API app and this package
  import it;
- ``alarm_runtime``: the rule engine and the alarm service inside the hub, and their outputs;
- ``hub_stats``: the hub's own periodic statistics; ``system_alarms``: alarms about the hub
  itself; ``metrics``: its Prometheus metrics; ``outbox``: the durable outbox of alarm events;
- ``replay``: a scenario or a recording through an in-process hub on a virtual clock.

Nothing is imported here: the ingest worker imports ``metrics`` and ``system_alarms`` without
loading the hub.
"""
