"""Print jobs end to end: the agent process, a real broker, the printer simulator on TCP."""

from __future__ import annotations

import json
import random
import re
import sqlite3
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from simulators.central import Central
from tests.agentproc import AgentProcess, write_config
from tests.broker import Broker
from tests.harness import SimPrinter, wait_until

ROOT_T = "dock/v1/hel1/dock-07"


def start(
    tmp_path: Path,
    broker: Broker,
    sim: SimPrinter,
    agents: Any,
    extra: str = "",
    printing: str = "poll_interval_s: 0.3, status_timeout_s: 1.0",
) -> tuple[AgentProcess, Path]:
    """The agent with a simulated Zebra `p1` and a label library `lib` (the `agents` fixture starts it)."""
    config = write_config(tmp_path, broker.port, extra=(
        "printers:\n"
        f"  - {{id: p1, language: zpl, transport: tcp, host: 127.0.0.1, port: {sim.port}, roles: [packing]}}\n"
        f"  - {{id: lib, language: zpl, transport: file, path: {tmp_path / 'library'}}}\n"
        f"printing: {{{printing}}}\n" + extra))  # fmt: skip
    agent = agents(config)
    agent.wait_for("printer.status", printer="p1")
    return agent, tmp_path / "state" / "agent.db"


def job(central: Central, body: dict[str, Any]) -> None:
    central.client.publish(f"{ROOT_T}/job/print", json.dumps(body), qos=1).wait_for_publish(10)


def events(central: Central, kind: str) -> list[dict[str, Any]]:
    return [json.loads(p) for t, p in list(central.messages) if t == f"{ROOT_T}/{kind}"]


def states(db: Path) -> dict[str, str]:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return dict(conn.execute("SELECT job_id, state FROM jobs").fetchall())
    finally:
        conn.close()


def printed_at_sim(tmp_path: Path) -> Counter[str]:
    counts: Counter[str] = Counter()
    for f in (tmp_path / "jobs").glob("job-*"):
        counts.update(re.findall(r"JOB-(\d+)", f.read_text(errors="replace")))
    return counts


def zpl_job(i: int) -> dict[str, Any]:
    return {"job_id": f"J-{i:05d}", "printer": "p1", "zpl": f"^XA^FO20,20^A0N,30,30^FDJOB-{i:05d}^FS^XZ"}


def test_paper_out_mid_run_waits_alerts_and_resumes(
    tmp_path: Path, broker: Broker, central: Central, agents: Any, printers: Any
) -> None:
    sim = printers("zpl", ("--quiet-when-out", "off"))
    # asked before every job: the jobs sent right after the paper ran out must wait, not go out
    agent, db = start(
        tmp_path,
        broker,
        sim,
        agents,
        printing="poll_interval_s: 0.3, status_timeout_s: 1.0, status_fresh_s: 0",
    )
    for i in range(5):
        job(central, zpl_job(i))
    wait_until(lambda: sum(s == "printed" for s in states(db).values()) == 5, what="5 printed")
    sim.control("paper_out on")
    for i in range(5, 10):
        job(central, zpl_job(i))
    wait_until(lambda: any(e["state"] == "paper_out" for e in events(central, "event/alert")), what="alert")
    alert = next(e for e in events(central, "event/alert") if e["kind"] == "printer")
    assert alert == {**alert, "kind": "printer", "printer": "p1", "state": "paper_out"} and alert["detail"]
    status = [e for e in events(central, "printer/p1/status")]
    assert status[-1]["state"] == "paper_out" and status[-1]["language"] == "zpl"
    time.sleep(1.5)  # the jobs wait: not failed, not printed
    assert {states(db)[f"J-{i:05d}"] for i in range(5, 10)} == {"accepted"}
    sim.control("paper_out off")
    wait_until(lambda: sum(s == "printed" for s in states(db).values()) == 10, what="10 printed")
    assert events(central, "printer/p1/status")[-1]["state"] == "ready"
    stats = sim.control("stats")
    assert stats["not_ready_jobs"] == 0 and stats["labels"] == 10
    assert all(n == 1 for n in printed_at_sim(tmp_path).values())


def test_a_burst_of_jobs_trusts_a_fresh_ready_answer(
    tmp_path: Path, broker: Broker, central: Central, agents: Any, printers: Any
) -> None:
    """A `ready` answer younger than printing.status_fresh_s (2 s by default) is not asked again:
    a burst goes out without a status round trip per job; once the answer is stale, it is asked."""
    sim = printers("zpl")
    agent, db = start(tmp_path, broker, sim, agents, printing="poll_interval_s: 30, status_timeout_s: 1.0")
    before = sim.control("stats")["status_queries"]
    for i in range(20):
        job(central, zpl_job(i))
    wait_until(lambda: sum(s == "printed" for s in states(db).values()) == 20, what="20 printed")
    burst = sim.control("stats")["status_queries"] - before
    assert burst <= 2, f"{burst} status queries for a burst of 20 jobs"
    time.sleep(2.2)  # the answer is stale now: the next job asks first
    job(central, zpl_job(20))
    wait_until(lambda: states(db).get("J-00020") == "printed", what="J-00020 printed")
    assert sim.control("stats")["status_queries"] - before == burst + 1
    assert all(n == 1 for n in printed_at_sim(tmp_path).values()) and len(printed_at_sim(tmp_path)) == 21
    # a job's connection is opened while its claim commits; a redelivered job, found already
    # accepted by that commit, leaves no connection open behind it (the raw port serves one)
    connections = sim.control("stats")["connections"]
    for _ in range(3):
        job(central, zpl_job(20))
    wait_until(
        lambda: sum(r.get("event") == "job.redelivered" for r in agent.records()) >= 3, what="redelivered"
    )
    wait_until(lambda: sim.control("stats")["open_connections"] == 0, what="no connection left open")
    stats = sim.control("stats")
    assert stats["jobs"] == 21 and stats["connections"] > connections
    # a job accepted while the worker is idle with a fresh answer is claimed in the same commit and
    # handed over: the same events, in the same order, as a job the worker reads back
    claimed = [r["job_id"] for r in agent.records() if r.get("event") == "job.accepted" and r.get("claimed")]
    assert claimed, "no job was handed over at acceptance"
    wait_until(
        lambda: sum(e["state"] == "printed" for e in events(central, "event/print")) == 21, what="events"
    )
    for i in range(21):
        seen = [
            (e["state"], e["attempts"]) for e in events(central, "event/print") if e["job_id"] == f"J-{i:05d}"
        ]
        assert seen == [("accepted", 0), ("printing", 1), ("printed", 1)], (i, seen)


def test_job_rules_rejections_reprint_expiry_and_library(
    tmp_path: Path, broker: Broker, central: Central, agents: Any, printers: Any
) -> None:
    sim = printers("zpl")
    agent, db = start(tmp_path, broker, sim, agents)
    job(central, {"job_id": "T-1", "printer": "role:packing", "template": "return_label",
                  "data": {"return_id": "R1", "order_number": "SO-1", "customer_name": "^XA~JR^XZ"}})  # fmt: skip
    job(central, {"job_id": "T-1", "printer": "p1", "zpl": "^XA^FDdup^FS^XZ"})  # redelivery: ignored
    job(central, {"job_id": "BAD-1", "printer": "p7", "zpl": "^XA^XZ"})
    job(central, {"job_id": "BAD-2", "printer": "p1", "template": "nope", "data": {}})
    job(
        central,
        {"job_id": "BAD-3", "printer": "p1", "template": "return_label", "data": {"return_id": "R1"}},
    )
    job(central, {"job_id": "BAD-4", "printer": "p1", "zpl": "^XA^XZ", "escpos_b64": "AA=="})
    job(central, {"job_id": "BAD-5", "printer": "p1", "zpl": "^XA^XZ", "copies": 0})
    job(
        central,
        {"job_id": "OLD-1", "printer": "p1", "zpl": "^XA^XZ", "not_after": "2020-01-01T00:00:00.000Z"},
    )
    job(central, {"job_id": "LIB-1", "printer": "lib", "template": "routing_slip",
                  "data": {"order_number": "SO-9", "return_id": "R9", "bin": "B-1"}})  # fmt: skip
    wait_until(lambda: states(db).get("T-1") == "printed" and states(db).get("LIB-1") == "printed"
               and states(db).get("OLD-1") == "expired", what="printed and expired")  # fmt: skip
    s = states(db)
    assert {s[f"BAD-{i}"] for i in range(1, 6)} == {"rejected"} and s["OLD-1"] == "expired"

    def codes() -> dict[str, str]:
        return {
            e["job_id"]: e["error"]["code"]
            for e in events(central, "event/print")
            if e["state"] == "rejected"
        }

    def lib_printed() -> bool:
        return any(e["job_id"] == "LIB-1" and e["state"] == "printed" for e in events(central, "event/print"))

    wait_until(lambda: len(codes()) == 5 and lib_printed(), what="the events")
    assert codes() == {"BAD-1": "unknown_printer", "BAD-2": "unknown_template", "BAD-3": "bad_data",
                     "BAD-4": "bad_job", "BAD-5": "bad_job"}  # fmt: skip
    t1 = [e["state"] for e in events(central, "event/print") if e["job_id"] == "T-1"]
    assert t1 == ["accepted", "printing", "printed"]  # one accepted despite the redelivery
    label = next(f for f in (tmp_path / "jobs").glob("job-*") if "SO-1" in f.read_text())
    text = label.read_text()
    assert text.count("^XA") == 1 and "\\5EXA\\7EJR\\5EXZ" in text
    library = sorted(p.suffix for p in (tmp_path / "library").iterdir())
    assert library == [".png", ".zpl"]
    reply = central.command("dock-07", "reprint", {"job_id": "T-1"})
    assert reply["status"] == "ok"
    wait_until(lambda: sum("SO-1" in f.read_text() for f in (tmp_path / "jobs").glob("job-*")) == 2,
               what="reprinted")  # fmt: skip
    assert central.command("dock-07", "reprint", {"job_id": "NOPE"})["status"] == "error"
    test = central.command("dock-07", "test_print", {"printer": "p1"})
    assert test["status"] == "ok"
    wait_until(lambda: states(db).get(test["data"]["job_id"]) == "printed", what="test label printed")
    assert any("dock-07/p1" in f.read_text(errors="replace") for f in (tmp_path / "jobs").glob("job-*"))
    bad_printer = central.command("dock-07", "test_print", {"printer": "zz"})
    assert bad_printer["error"]["code"] == "unknown_printer"
    # the connection dies mid-job: uncertain, and never printed again by itself
    sim.control("drop_next 10")
    job(
        central,
        {"job_id": "CUT-1", "printer": "p1", "zpl": "^XA^FO1,1^A0N,30,30^FDCUT " + "x" * 3000 + "^FS^XZ"},
    )
    wait_until(lambda: states(db).get("CUT-1") == "uncertain", what="uncertain")
    time.sleep(1.0)
    assert states(db)["CUT-1"] == "uncertain" and sim.control("stats")["dropped"] == 1
    # an agent that died while sending: the job it had claimed is uncertain after the restart
    agent.terminate()
    conn = sqlite3.connect(db)
    conn.execute("UPDATE jobs SET state = 'printing' WHERE job_id = 'LIB-1'")
    conn.commit()
    conn.close()
    agent.start()
    wait_until(lambda: states(db).get("LIB-1") == "uncertain", what="recovered as uncertain")
    wait_until(
        lambda: any(
            e["job_id"] == "LIB-1" and e["state"] == "uncertain" for e in events(central, "event/print")
        ),
        what="uncertain event",
    )


@pytest.mark.slow
def test_thousand_jobs_redelivered_and_sigkilled_print_once(
    tmp_path: Path, broker: Broker, central: Central, agents: Any, printers: Any
) -> None:
    sim = printers("zpl")
    agent, db = start(tmp_path, broker, sim, agents)
    rng = random.Random(11)
    kills = 0
    for i in range(1000):
        body = zpl_job(i)
        job(central, body)
        if i % 3 == 0:
            job(central, body)  # a redelivery of the same job
        if i in (150, 400, 650, 900):
            time.sleep(rng.uniform(0.05, 0.3))
            agent.kill()
            kills += 1
            agent.start()
    for i in rng.sample(range(1000), 50):
        job(central, zpl_job(i))  # a broker replay, long after
    final = {"printed", "uncertain"}
    wait_until(lambda: len(states(db)) == 1000 and set(states(db).values()) <= final, timeout=240,
               what="every job printed or uncertain")  # fmt: skip
    s = states(db)
    at_sim = printed_at_sim(tmp_path)
    assert max(at_sim.values()) == 1, "a job was printed twice"
    for job_id, state in s.items():
        n = at_sim.get(job_id.split("-")[1], 0)
        assert (state == "printed" and n == 1) or (state == "uncertain" and n <= 1), (job_id, state, n)
    # at least once: an event sent before a SIGKILL and not yet marked sent is sent again after it,
    # the same bytes; a job accepted twice would be a second event (another ts)
    accepted = Counter(
        json.dumps(e, sort_keys=True) for e in events(central, "event/print") if e["state"] == "accepted"
    )
    by_job = Counter(json.loads(k)["job_id"] for k in accepted)
    assert max(by_job.values()) == 1, [k for k in accepted if by_job[json.loads(k)["job_id"]] > 1]
    print(json.dumps({"kills": kills, "printed": sum(v == "printed" for v in s.values()),
                      "uncertain": sum(v == "uncertain" for v in s.values())}))  # fmt: skip


def test_routing_slip_for_each_expected_scan(
    tmp_path: Path, broker: Broker, central: Central, agents: Any
) -> None:
    from simulators.central import labels_of
    from tests.harness import type_payloads

    link = tmp_path / "s1"
    central.generate(3)
    central.returns[0]["bin"] = "B-7"
    config = write_config(tmp_path, broker.port, [{"id": "s1", "type": "serial", "port": str(link)}], extra=(
        f"printers:\n  - {{id: lib, language: zpl, transport: file, path: {tmp_path / 'library'}}}\n"
        "printing: {routing_slip_printer: lib, poll_interval_s: 0.3}\n"))  # fmt: skip
    agent = agents(config)
    agent.wait_for("manifest.applied", version=1)
    type_payloads(link, [labels_of(central.returns[0])[0], "UNKNOWN-1", labels_of(central.returns[0])[0]])
    wait_until(lambda: len(list((tmp_path / "library").glob("*.zpl"))) == 1, what="one slip")
    time.sleep(1.0)  # the unknown and the duplicate print nothing
    slips = list((tmp_path / "library").glob("*.zpl"))
    assert len(slips) == 1
    text = slips[0].read_text()
    assert "ROUTE TO B-7" in text and central.returns[0]["order_number"] in text
    assert len(list((tmp_path / "library").glob("*.png"))) == 1
