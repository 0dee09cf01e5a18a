"""A bundle for the wrong platform, end to end over MQTT: `edge-agent launch` as a process on
this machine is sent a correctly signed bundle built for the other architecture (from the
package index), refuses it with `bad_platform` before installing anything, keeps running its
release, and then takes a bundle built for its own platform as before."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.broker import Broker
from tests.release_kit import Kit, Watch, fleet, update_args
from tests.test_release_platforms import HOST, OTHER
from tests.test_update import ROOT_TOPIC, _args, _cmd, _launch_config, _online


@pytest.fixture(scope="module")
def kit(tmp_path_factory: pytest.TempPathFactory) -> Kit:
    return Kit(tmp_path_factory.mktemp("platform-update-kit"))


@pytest.mark.index
@pytest.mark.slow
def test_a_bundle_for_another_platform_is_refused_whole_and_the_release_runs_on(
    tmp_path: Path, broker: Broker, kit: Kit, launches: Any
) -> None:
    foreign = kit.bundle("0.3.0", platform=OTHER)
    watch = Watch(broker.port, f"{ROOT_TOPIC}/dock-07/software", f"{ROOT_TOPIC}/dock-07/state")
    launch = launches(_launch_config(tmp_path, broker, kit))
    releases = tmp_path / "releases"
    try:
        _online(watch, "0.1.0")
        before = sorted(p.name for p in releases.iterdir())
        mark = watch.mark()
        reply = _cmd(broker, "update", _args(foreign))
        assert reply["status"] == "ok" and reply["data"]["state"] == "accepted", reply
        sw = watch.wait("software", lambda d: d["state"] == "failed", mark=mark)
        assert sw["error"]["code"] == "bad_platform" and sw["current"] == "0.1.0" and sw["target"] == "0.3.0"
        arch = OTHER.removeprefix("linux_")
        first = sw["error"]["message"].split(" ", 1)[0]
        assert first.startswith("cffi-") and first.endswith(f"_{arch}.whl"), sw["error"]
        assert f"does not fit this device (CPython 3.11 on {HOST}" in sw["error"]["message"]
        assert f"the bundle was built for {OTHER} / Python 3.11" in sw["error"]["message"]
        states = [d["state"] for d in watch.since(mark, "software")]
        assert "installing" not in states and "restarting" not in states, states
        assert sorted(p.name for p in releases.iterdir()) == before  # nothing installed
        assert list((releases / ".downloads").iterdir()) == []
        assert (releases / "current").resolve() == (releases / "0.1.0").resolve()
        assert launch.count("agent.started", component="launcher") == 1, "the running release was restarted"
        assert _cmd(broker, "status")["status"] == "ok"  # the agent answers as before

        own = kit.bundle("0.3.0")  # the same version for this machine: updates as today
        out = fleet(broker.port, "update", "hel1/dock-07", *update_args(own), "--timeout", "180", "--json")
        assert out.returncode == 0, out.stdout + out.stderr
        [row] = json.loads(out.stdout)
        assert row["status"] == "healthy" and row["current"] == "0.3.0" and row["previous"] == "0.1.0"
        assert (releases / "current").resolve().name == "0.3.0"
    finally:
        watch.close()
