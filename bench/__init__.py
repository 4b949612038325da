"""cafebot's benchmarks: ``python -m bench`` (see bench/run.py and bench/RESULTS.md).

Importing the package puts the checkout (cafebot) and tests/ (the fake Zulip server,
the test harness) on the module path, so that every ``bench.*`` module can use them.
"""

import sys
from pathlib import Path

for _path in (
    Path(__file__).resolve().parent.parent / "tests",
    Path(__file__).resolve().parent.parent,
):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))
