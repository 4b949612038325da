import sys

from cafebot.cli import main

sys.exit(main())
