"""Grafana boards as code: typed builders, the boards, and their generated JSON in ``json/``.

``safety-hub dashboards build`` regenerates ``dashboards/json/``; ``check`` fails when it is
stale; ``push`` uploads the boards to a Grafana. See docs/dashboards.md.
"""
