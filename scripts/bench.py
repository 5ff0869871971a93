#!/usr/bin/env python
"""``make bench``: the plant-scale benchmark of issue 5 (see bench/run.py and
docs/performance.md). ``--quick`` runs one CI-sized point."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.run import main  # noqa: E402

if __name__ == "__main__":
    raise SystemExit(main())
