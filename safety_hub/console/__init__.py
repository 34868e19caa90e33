"""The operator console: static files (HTML, CSS, ES modules) served by the hub at ``/console/``.

No build step: ``static/`` is what the browser loads. See docs/console.md.
"""

from __future__ import annotations

from pathlib import Path

STATIC_DIR = Path(__file__).resolve().parent / "static"
"""The directory the API mounts at ``/console/``."""
