"""cafebot's benchmarks: ``python -m bench`` (see bench/run.py and bench/RESULTS.md).

Importing the package puts the checkout on the module path, so that every ``bench.*``
module can use cafebot and the tests' helpers (tests.fakezulip, tests.harness).
"""

import sys
from pathlib import Path

_ROOT = str(Path(__file__).resolve().parent.parent)
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)
