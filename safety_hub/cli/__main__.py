"""``python -m safety_hub.cli``: the ``safety-hub`` command."""

from safety_hub.cli import main

raise SystemExit(main())
