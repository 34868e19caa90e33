"""Where the shipped rule packs are, next to the rules code that reads them."""

from __future__ import annotations

from pathlib import Path

from safety_hub.errors import ConfigError


def default_rules_path() -> Path:
    """The shipped rule packs: ``alert_rules/`` beside the package, else in the working dir."""
    for candidate in (Path(__file__).resolve().parents[2] / "alert_rules", Path("alert_rules")):
        if candidate.is_dir():
            return candidate
    raise ConfigError(
        "SAFETY_HUB_RULES", None, "no alert_rules/ folder found; set the rule pack path"
    )
