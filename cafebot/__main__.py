import sys

from cafebot.cli.main import main

sys.exit(main())
