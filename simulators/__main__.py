import sys

from simulators.cli import main

sys.exit(main())
