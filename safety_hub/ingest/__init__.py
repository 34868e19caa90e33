"""Ingest: MQTT telemetry from the gateways to the spool, the live table and the rule engine.

- ``telemetry``: the MQTT contract v1 (topics, reason codes, ``Reading``, ``Rejection``,
  ``DecodedMessage``, gateway status);
- ``decoder``: ``TelemetryDecoder`` and the ``Decoder`` port a second telemetry protocol plugs
  into;
- ``intake``: fair per-enterprise lanes and log/report budgets;
- ``worker``: ``IngestWorker`` (decode → live table and listeners → spool → ack);
- ``spool``: the durable on-disk buffer; ``sink``: ``SinkWorker`` (spool → storage);
- ``lineproto``: the InfluxDB line protocol of readings; ``live``: the latest value per tag.

Nothing is imported here, so importing one module does not load the others.
"""
