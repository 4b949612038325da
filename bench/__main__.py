"""``python -m bench``: run the benchmarks, print one table, write bench/RESULTS.md."""

import sys

from bench.run import main

sys.exit(main())
