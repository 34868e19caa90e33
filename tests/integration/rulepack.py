"""A copy of the shipped rule pack (``alert_rules/*.yaml``) with one timer shortened, for live
tests about what a timer does rather than its shipped length (the shipped lengths are covered by
the rule pack's own tests, ``alert_rules/tests/``). Passed to the hub as ``SAFETY_HUB_RULES``."""

from __future__ import annotations

import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = ROOT / "alert_rules"


def rules_with(dest: Path, file: str, old: str, new: str) -> Path:
    """``dest`` holding the shipped rule files, ``old`` replaced by ``new`` in ``file`` (it must
    occur there exactly once, so that a changed rule pack fails loudly instead of silently
    testing the shipped timer)."""
    dest.mkdir(parents=True, exist_ok=True)
    for path in SHIPPED.glob("*.yaml"):
        shutil.copy(path, dest / path.name)
    target = dest / file
    text = target.read_text(encoding="utf-8")
    assert text.count(old) == 1, f"{old!r} occurs {text.count(old)} times in {SHIPPED / file}"
    target.write_text(text.replace(old, new), encoding="utf-8")
    return dest
