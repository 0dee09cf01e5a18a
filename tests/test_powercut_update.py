"""A power cut (LazyFS) at each step of a software update: downloading, verifying, installing,
restarting into the new release, and just after it reported healthy. Whatever step the cut hit,
the next start of the launcher runs a whole release (the old one or the new one), online, and
`current` points at a release that is all there."""

from __future__ import annotations

import json
import subprocess
import threading
import time
from pathlib import Path

import pytest

from edge_agent.update.releases import Releases
from tests.agentproc import write_config
from tests.broker import Broker
from tests.harness import descendants
from tests.powercut import Disk
from tests.release_kit import Kit, Launch, Watch, fleet, update_args, update_config

SITE = "dock/v1/hel1/dock-07"
STEPS = ("downloading", "verifying", "installing", "restarting", "healthy")


@pytest.fixture(scope="module")
def kit(tmp_path_factory: pytest.TempPathFactory) -> Kit:
    return Kit(tmp_path_factory.mktemp("release-kit"))


@pytest.mark.slow
@pytest.mark.parametrize("step", STEPS)
def test_a_power_cut_at_each_step_of_an_update_leaves_a_whole_release(
    tmp_path: Path, broker: Broker, kit: Kit, step: str
) -> None:
    bundle = kit.bundle("0.2.0")
    with Disk(tmp_path) as disk:
        config = write_config(tmp_path, broker.port)
        text = config.read_text().replace(str(tmp_path / "state"), str(disk.mount / "state"))
        config.write_text(text + update_config(disk.mount, kit, health_timeout_s=30))
        releases = disk.mount / "releases"
        watch = Watch(broker.port, f"{SITE}/software", f"{SITE}/state")
        launch = Launch(config, tmp_path / "launch.log").start()
        try:
            watch.wait("state", lambda d: d.get("online") is True and d.get("agent_version") == "0.1.0")
            mark = watch.mark()
            # the update command, from edge-fleet in a thread: it waits for the outcome, which the cut ends
            threading.Thread(target=fleet, args=(broker.port, "update", "hel1/dock-07", *update_args(bundle),
                                                 "--timeout", "60"), daemon=True).start()  # fmt: skip
            watch.wait("software", lambda d: d.get("state") == step, mark=mark, timeout=120)
            time.sleep(0.05 if step != "healthy" else 0.3)
            assert launch.proc is not None
            disk.cut([launch.proc.pid, *descendants(launch.proc.pid)])
            launch.proc.wait()
            launch.proc = None
            mark = watch.mark()
            launch.start()
            online = watch.wait("state", lambda d: d.get("online") is True, mark=mark, timeout=120)
            version = online["agent_version"]
            assert version in ("0.1.0", "0.2.0"), online
            on_card = Releases(releases)
            assert on_card.current() == version and on_card.installed(version)
            run = subprocess.run([str(on_card.executable(version)), "--version"], capture_output=True,
                                 text=True, timeout=60)  # fmt: skip
            assert run.returncode == 0 and version in run.stdout, (run.stdout, run.stderr[-1000:])
            state = json.loads((releases / "state.json").read_text())  # whole, parseable
            assert isinstance(state, dict)
            print(json.dumps({"cut_at": step, "came_back_as": version, "trial": state.get("trial")}))
        finally:
            launch.kill()
            watch.close()
