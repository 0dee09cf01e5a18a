"""Power-cut cycles on a running station, shared by tests/test_powercut.py (CI, 50 cycles) and
bench/powercut.py (500): parcels and their items scanned (receipts open, count and close), print
jobs arriving, desired configurations pushed, then the power cut at a random moment
(tests/powercut.py) and a restart; after every cut, what the agent had acknowledged is checked
against what it has now."""

from __future__ import annotations

import json
import random
import re
import sqlite3
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from simulators.central import Central, item_scans
from simulators.samples import ean13
from tests.agentproc import AgentProcess, write_config
from tests.broker import Broker
from tests.harness import SimPrinter, wait_until
from tests.powercut import Disk
from tests.test_display import Scanner

ROOT_T = "dock/v1/hel1/dock-07"


@dataclass
class Tally:
    cycles: int = 0
    scans_acked: int = 0
    jobs_acked: int = 0
    configs: int = 0
    lost: int = 0
    seq_reused: int = 0
    printed_twice: int = 0
    torn: int = 0
    manifest_lost: int = 0
    receipts_checked: int = 0
    """Cuts after which a receipt was open, and so checked against the stored scans."""
    receipt_torn: int = 0
    uncertain: int = 0
    windows: Counter[str] = field(default_factory=Counter)
    """What each cut fell into: `scan` (a scan typed within 50 ms before it), `item` (an item
    scan), `job`, `config`."""
    problems: list[str] = field(default_factory=list)


class Station:
    def __init__(self, folder: Path, broker: Broker, disk: Disk, printer: SimPrinter, seed: int) -> None:
        self.folder, self.broker, self.disk, self.printer = folder, broker, disk, printer
        self.rng = random.Random(seed)
        self.central = Central("127.0.0.1", broker.port, "hel1")
        self.central.generate(200)
        self.link = folder / "s1"
        self.config = write_config(folder, broker.port, [{"id": "s1", "type": "serial", "port": str(self.link),
                                                          "reopen_max_s": 0.2}],
                                   extra="printers:\n  - {id: p1, language: zpl, transport: tcp, host: 127.0.0.1, "
                                         f"port: {printer.port}}}\nprinting: {{poll_interval_s: 0.3}}\n")  # fmt: skip
        self.config.write_text(
            self.config.read_text().replace(str(folder / "state"), str(disk.mount / "state"))
        )
        self.db_path = disk.mount / "state" / "agent.db"
        self.agent = AgentProcess(self.config, folder / "agent.log")
        self.scanner = Scanner(self.link)
        self.jobs_acked: set[str] = set()
        self.jobs_stored: set[str] = set()
        self.scans_stored: set[str] = set()
        self.configs: list[int] = []
        self.next_job = 0
        self.next_config = 1
        self.last_event: dict[str, float] = {}
        self.tally = Tally()

    # --- one cycle -------------------------------------------------------------------------
    def cycle(self) -> None:
        self.agent.start()
        self.agent.wait_for("mqtt.connected", timeout=30)
        if self.tally.cycles == 0:
            self.agent.wait_for("manifest.applied", timeout=30)
        self.agent.wait_for("scanner.opened", timeout=30)
        stop = threading.Event()
        workers = [threading.Thread(target=f, args=(stop,), daemon=True) for f in (self._scans, self._jobs)]
        for w in workers:
            w.start()
        time.sleep(self.rng.uniform(0.05, 1.2))
        if self.rng.random() < 0.3:
            self._push_config()
        time.sleep(self.rng.uniform(0.0, 0.3))
        cut_at = time.monotonic()
        pid = self.agent.proc.pid  # type: ignore[union-attr]
        reported_manifest = self.central.states.get("dock-07", {}).get("manifest_version")
        self.disk.cut([pid])
        self.agent.proc.wait()  # type: ignore[union-attr]
        stop.set()
        for w in workers:
            w.join()
        for kind, t in self.last_event.items():
            if cut_at - t < 0.05:
                self.tally.windows[kind] += 1
        self.tally.cycles += 1
        self.check(reported_manifest)

    def _scans(self, stop: threading.Event) -> None:
        while not stop.is_set():
            ret = self.rng.choice(self.central.returns)
            expected = self.rng.random() < 0.7
            self.scanner.scan(ret["order_number"] if expected else f"X-{self.rng.randrange(10**6)}")
            self.last_event["scan"] = time.monotonic()
            time.sleep(self.rng.uniform(0.005, 0.04))
            if not expected:
                continue
            # its items out of the box (a receipt opened): some, all, one too many, a stranger
            for _ in range(self.rng.randrange(0, 5)):
                if stop.is_set():
                    return
                item = self.rng.choice(ret["items"])
                code = (
                    self.rng.choice(item_scans(item))
                    if self.rng.random() < 0.9
                    else "]E0" + ean13(9000 + self.rng.randrange(999))
                )
                self.scanner.scan(code)
                self.last_event["item"] = time.monotonic()
                time.sleep(self.rng.uniform(0.005, 0.04))

    def _jobs(self, stop: threading.Event) -> None:
        while not stop.is_set():
            job_id = f"J-{self.next_job:06d}"
            self.next_job += 1
            body = {"job_id": job_id, "printer": "p1", "zpl": f"^XA^FO20,20^A0N,30,30^FDJOB-{job_id}^FS^XZ"}
            info = self.central.client.publish(f"{ROOT_T}/job/print", json.dumps(body), qos=1)
            try:
                info.wait_for_publish(2)
            except (RuntimeError, ValueError):
                continue
            if info.is_published():  # the broker's PUBACK: from here the job must not be lost
                self.jobs_acked.add(job_id)
                self.last_event["job"] = time.monotonic()
            time.sleep(self.rng.uniform(0.02, 0.15))

    def _push_config(self) -> None:
        version = self.next_config
        self.next_config += 1
        body = {"version": version, "config": {"telemetry_interval_s": 10 + version % 50}}
        self.central.client.publish(f"{ROOT_T}/config/desired", json.dumps(body), qos=1,
                                    retain=True).wait_for_publish(5)  # fmt: skip
        self.configs.append(version)
        self.last_event["config"] = time.monotonic()

    # --- after a cut -----------------------------------------------------------------------
    def check(self, reported_manifest: int | None) -> None:
        t = self.tally
        conn = sqlite3.connect(self.db_path)  # recovers the WAL as the agent's next start will
        try:
            stored = dict(conn.execute("SELECT event_id, payload FROM scans").fetchall())
            seqs = sorted(r[0] for r in conn.execute("SELECT seq FROM scans"))
            meta_seq = conn.execute("SELECT value FROM meta WHERE key = 'seq'").fetchone()
            jobs = dict(conn.execute("SELECT job_id, state FROM jobs").fetchall())
            desired = conn.execute("SELECT version, overlay FROM desired_config WHERE id = 1").fetchone()
        finally:
            conn.close()
        log = self.central.devices.get("dock-07")
        received = dict(log.event_ids) if log else {}
        lost = [e for e in received if e not in stored]
        if lost:
            t.lost += len(lost)
            t.problems.append(f"cycle {t.cycles}: {len(lost)} received events not in storage")
        # what central got is what storage holds, byte for byte: a re-send carries the stored bytes
        differ = [e for e in received if e in stored and received[e] != stored[e].encode("utf-8")]
        if differ:
            t.problems.append(f"cycle {t.cycles}: {len(differ)} events central has differ from storage: "
                              + differences(received[differ[0]], stored[differ[0]].encode("utf-8")))  # fmt: skip
        if seqs != list(range(1, len(seqs) + 1)):
            t.problems.append(f"cycle {t.cycles}: stored seqs have a gap")
        if meta_seq is not None and seqs and int(meta_seq[0]) < seqs[-1]:
            t.seq_reused += 1
            t.problems.append(f"cycle {t.cycles}: meta seq {meta_seq[0]} behind the last scan {seqs[-1]}")
        # A job the broker took from the central system and had not yet handed over is still the
        # broker's (the agent's session keeps it): it comes after the restart, checked at the end.
        # A job the agent had stored (and so PUBACKed) must still be there.
        gone = self.jobs_stored - set(jobs)
        if gone:
            t.lost += len(gone)
            t.problems.append(f"cycle {t.cycles}: stored jobs gone: {sorted(gone)[:5]}")
        self.jobs_stored |= set(jobs)
        # the agent logs scan.stored after the commit returned (and the log is not on the card)
        self.scans_stored |= {r["event_id"] for r in self.agent.records() if r.get("event") == "scan.stored"}
        gone_scans = self.scans_stored - set(stored)
        if gone_scans:
            t.lost += len(gone_scans)
            t.problems.append(f"cycle {t.cycles}: {len(gone_scans)} scans acknowledged by a commit are gone")
        if desired is not None:
            try:
                version, overlay = desired[0], json.loads(desired[1])
                assert version in self.configs and isinstance(overlay, dict)
            except (AssertionError, ValueError, TypeError):
                t.torn += 1
                t.problems.append(f"cycle {t.cycles}: desired config torn: {desired!r}"[:300])
        self._check_receipt(stored)
        manifest = sqlite3.connect(self.disk.mount / "state" / "manifest.db")
        try:
            version = int(
                (manifest.execute("SELECT value FROM meta WHERE key='version'").fetchone() or [0])[0]
            )
        finally:
            manifest.close()
        if reported_manifest and version < reported_manifest:
            t.manifest_lost += 1
            t.problems.append(f"cycle {t.cycles}: manifest {version} after reporting {reported_manifest}")
        t.uncertain = sum(s == "uncertain" for s in jobs.values())
        t.scans_acked, t.jobs_acked, t.configs = len(received), len(self.jobs_acked), len(self.configs)

    def _check_receipt(self, stored: dict[str, str]) -> None:
        """The open receipt is exactly what its stored item scans counted: each line's units, the
        extras; and closed receipts are numbered without a gap, each with its event queued."""
        t = self.tally
        conn = sqlite3.connect(self.db_path)
        try:
            row = conn.execute("SELECT r.receipt_id, r.data FROM meta AS m JOIN receipts AS r ON "
                               "r.receipt_id = m.value WHERE m.key = 'open_receipt' AND r.state = 'open'").fetchone()  # fmt: skip
            closed = conn.execute("SELECT receipt_seq, outbox_id FROM receipts WHERE state != 'open' "
                                  "ORDER BY receipt_seq").fetchall()  # fmt: skip
        finally:
            conn.close()
        seqs = [r[0] for r in closed]
        if seqs != list(range(1, len(seqs) + 1)) or any(r[1] is None for r in closed):
            t.receipt_torn += 1
            t.problems.append(
                f"cycle {t.cycles}: closed receipts numbered {seqs[-5:]} or without their event"
            )
        if row is None:
            return
        t.receipts_checked += 1
        receipt_id, data = row[0], json.loads(row[1])
        counted: Counter[int] = Counter()
        extras = 0
        for payload in stored.values():
            event = json.loads(payload)
            if (event.get("receipt") or {}).get("receipt_id") != receipt_id:
                continue
            if event["outcome"] == "item":
                counted[event["receipt"]["line"]] += event.get("qty", 1)
            elif event["outcome"] == "extra_item":
                extras += 1
        have = Counter(
            {i: line["received_qty"] for i, line in enumerate(data["lines"]) if line["received_qty"]}
        )
        if have != counted or len(data["extra"]) != extras:
            t.receipt_torn += 1
            t.problems.append(f"cycle {t.cycles}: open receipt {receipt_id} counts {dict(have)} + "
                              f"{len(data['extra'])} extra; its stored scans {dict(counted)} + {extras}")  # fmt: skip

    # --- the end ---------------------------------------------------------------------------
    def finish(self) -> None:
        """A last start without a cut: everything drains; replayed events are the same bytes."""
        t = self.tally
        self.agent.start()
        self.agent.wait_for("mqtt.connected", timeout=30)
        self.agent.wait_for("scanner.opened", timeout=30)
        # Scans typed between the last cut and the workers' stop wait in the scanner's line and
        # are stored by this start, maybe after the outbox looked drained; one last scan behind
        # them on the same line, once stored, says they all are, so `last` below counts them.
        self.scanner.scan("X-FINAL")
        self.agent.wait_for("scan.stored", timeout=30, raw="X-FINAL")
        db = sqlite3.connect(f"file:{self.db_path}?mode=ro", uri=True)
        try:
            wait_until(lambda: db.execute("SELECT count(*) FROM outbox WHERE sent_at IS NULL").fetchone()[0] == 0,
                       timeout=120, what="the outbox drained")  # fmt: skip
            last = db.execute("SELECT max(seq) FROM scans").fetchone()[0] or 0
            states = dict(db.execute("SELECT job_id, state FROM jobs").fetchall())
        finally:
            db.close()
        for first in range(1, last + 1, 500):
            self.central.command(
                "dock-07", "replay_events", {"from_seq": first, "to_seq": min(first + 499, last)}
            )
        wait_until(lambda: self.central.report()["dock-07"]["duplicates"] >= last, timeout=120,
                   what="every replayed event back at central")  # fmt: skip
        report = self.central.report()["dock-07"]
        if report["missing"] or report["unique"] != last:
            t.lost += len(report["missing"])
            t.problems.append(
                f"central has {report['unique']} scans up to seq {report['max_seq']}, "
                f"missing {report['missing'][:10]}; the agent stored {last}"
            )
        t.seq_reused += report["conflicts"]
        if report["inexact_duplicates"]:
            first, again = self.central.devices["dock-07"].inexact[0]
            t.problems.append(f"{report['inexact_duplicates']} events re-sent with other bytes, the first: "
                              + differences(first, again))  # fmt: skip
        wait_until(lambda: self.jobs_acked <= set(self._states()), timeout=60,
                   what="every job the broker acknowledged stored")  # fmt: skip
        wait_until(lambda: all(s in ("printed", "uncertain") for s in self._states().values()), timeout=120,
                   what="every job printed or uncertain")  # fmt: skip
        counts: Counter[str] = Counter()
        for f in (self.folder / "jobs").glob("job-*"):
            counts.update(re.findall(r"JOB-(J-\d+)", f.read_text(errors="replace")))
        t.printed_twice = sum(1 for n in counts.values() if n > 1)
        for job_id, state in self._states().items():
            if state == "printed" and counts.get(job_id, 0) != 1:
                t.problems.append(
                    f"{job_id} is printed but reached the printer {counts.get(job_id, 0)} times"
                )
        t.uncertain = sum(s == "uncertain" for s in states.values())
        self.agent.kill()

    def _states(self) -> dict[str, str]:
        db = sqlite3.connect(f"file:{self.db_path}?mode=ro", uri=True)
        try:
            return dict(db.execute("SELECT job_id, state FROM jobs").fetchall())
        finally:
            db.close()

    def close(self) -> None:
        self.agent.kill()
        self.scanner.close()
        self.central.close()


def differences(got: bytes, stored: bytes) -> str:
    """The fields two copies of one event disagree on, for a problem's message."""
    a, b = json.loads(got), json.loads(stored)
    keys = sorted(k for k in a.keys() | b.keys() if a.get(k) != b.get(k))
    return f"seq {a.get('seq')}: " + ", ".join(f"{k} {a.get(k)!r} != {b.get(k)!r}" for k in keys)[:400]


def run_cycles(folder: Path, broker: Broker, printer: SimPrinter, cycles: int, seed: int = 1) -> Tally:
    with Disk(folder) as disk:
        station = Station(folder, broker, disk, printer, seed)
        try:
            for _ in range(cycles):
                station.cycle()
            station.finish()
        finally:
            station.close()
        return station.tally


def summary(t: Tally) -> dict[str, Any]:
    return {"cycles": t.cycles, "scans_acked": t.scans_acked, "jobs_acked": t.jobs_acked, "configs": t.configs,
            "lost": t.lost, "seq_reused": t.seq_reused, "printed_twice": t.printed_twice, "torn": t.torn,
            "manifest_lost": t.manifest_lost, "receipts_checked": t.receipts_checked,
            "receipt_torn": t.receipt_torn, "uncertain_jobs": t.uncertain, "cut_within_50ms_of": dict(t.windows),
            "problems": t.problems[:20]}  # fmt: skip
