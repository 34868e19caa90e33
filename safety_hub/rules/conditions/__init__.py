"""Condition kinds of the rule engine: one module per ``type`` of ``schema.ConditionModel``.

Each module holds the alarm-instance classes of its kind and ``compile_rule(rt, build)``, which
turns one rule into instances and subscribes them to the tag or enterprise slots
(``rules/slots.py``) whose readings they need. Instances talk to the engine only through
``base.EngineHooks``; the engine calls them only through the feed protocols of ``base``.
``table.CONDITION_KINDS`` maps each condition ``type`` to its module's ``compile_rule``.

Adding a condition kind: its model in ``rules/schema.py`` (in the ``ConditionModel`` union,
``CONDITION_TYPES`` and ``CONDITION_MODELS``), its module here, one entry in ``table.py``; and
its checks against the plant in ``rules/loader.py`` if it has any.
"""
