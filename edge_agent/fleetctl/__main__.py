import sys

from edge_agent.fleetctl.cli import main

sys.exit(main())
