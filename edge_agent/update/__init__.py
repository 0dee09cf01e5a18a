"""Software updates: `edge-agent launch` (launcher.py, manager.py), release bundles (bundle.py,
build.py), the releases folder (releases.py), and the launcher's line protocol with the agent
(protocol.py). Nothing here imports the agent's components: the launcher stays small and does
not change when the agent does."""

from __future__ import annotations

import asyncio
import signal
import sys
from pathlib import Path

from edge_agent import __version__
from edge_agent.config.base import UpdateConfig
from edge_agent.sdnotify import Notifier
from edge_agent.store.db import AGENT_SCHEMA


async def launch(config_path: Path, update: UpdateConfig, storage: Path) -> None:
    """Run the current release's agent until SIGTERM/SIGINT, switching releases as asked."""
    from edge_agent.update.launcher import Launcher
    from edge_agent.update.manager import ReleaseManager
    from edge_agent.update.releases import Releases

    releases = Releases(update.releases_dir)
    launcher = Launcher(config_path, releases, Notifier())
    manager = ReleaseManager(launcher, releases, update, storage, (__version__, AGENT_SCHEMA))
    await manager.start(Path(sys.prefix))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await launcher.run(stop)
