"""A simulated central returns system over the real broker.

It generates a manifest of returns (each with its signed RET1 label, an SSCC and an S10
tracking number), serves it as a chunked snapshot when an agent asks (`manifest/request`) and
on demand, publishes deltas, sends commands and prints their replies, and records every scan
event: per device it reports how many arrived, duplicates (the same event_id again), conflicts
(one seq with two event_ids), seqs missing, and arrivals out of order.

    edge-sim central --port 1883 --site hel1 --returns 1000 --labels-out labels.txt

Stdin, one command per line: `cmd DEVICE NAME [JSON-ARGS]`, `snapshot`, `delta N`, `report`.

Scaling out: `--share GROUP` subscribes to the site's events through the MQTT 5 shared
subscription `$share/GROUP/...`, so two or more central processes split the events between them;
with `--dedupe-db PATH` (one SQLite file the group shares, as a real central shares its
database) an event is handled by the first consumer that records its `event_id`, so a message
the broker redelivers after a reconnect is recognised and not handled twice. Give each consumer
a stable `--consumer ID`: a restarted consumer resumes its broker session, and with it the
events that were sent to it and not acknowledged.
Several brokers (`--servers h:p,h:p`): one connection to each, events from all of them merged.
"""

from __future__ import annotations

import argparse
import json
import random
import sqlite3
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from simulators.samples import DEMO_KEY, DEMO_KEY_ID, GS, ean13, ret1_label, s10, sscc
from simulators.wire import emit


def product(n: int) -> dict[str, Any]:
    """Catalogue item n: its SKU, name, EAN-13 and unit weight; every seventh is serialised."""
    return {"sku": f"SKU-{n}", "name": f"Item {n}", "gtin": ean13(n), "weight_g": 150 + 10 * n}


def make_return(i: int) -> dict[str, Any]:
    """Return i: one item line (1-3 units), a second line on every fourth; serialised items list
    their expected serial numbers."""
    items = [{**product(i % 97), "qty": 1 + i % 3}]
    if i % 4 == 0:
        second = {**product(97 + i % 13), "qty": 1}
        if i % 8 == 0:
            second["serials"] = [f"SN{i:07d}"]
        items.append(second)
    return {
        "return_id": f"R{i:07d}",
        "order_number": f"SO-{i + 500000}",
        "keys": {"tracking_number": s10(i % 100_000_000, "RR", "FI"), "sscc": sscc(i)},
        "customer": {"name": f"Customer {i}"},
        "items": items,
        "weight_g": 250 + sum(it["weight_g"] * it["qty"] for it in items),
    }


def item_scans(item: dict[str, Any]) -> list[str]:
    """What a worker may scan on an item: its EAN-13 (as a scanner sends it, with `]E0`), a GS1
    DataMatrix with its GTIN and serial when it is serialised, or its SKU as a Code 128."""
    scans = ["]E0" + item["gtin"], item["sku"]]
    for serial in item.get("serials") or []:
        scans.append(f"]d201{item['gtin'].zfill(14)}21{serial}")
    return scans


def labels_of(ret: dict[str, Any], key_id: str = DEMO_KEY_ID, key: bytes = DEMO_KEY) -> list[str]:
    """What a worker may scan for this return: its RET1 QR, its SSCC label, its S10 label."""
    return [
        ret1_label(ret["return_id"], ret["order_number"], key_id, key),
        f"]C100{ret['keys']['sscc']}{GS}42000180",
        ret["keys"]["tracking_number"],
    ]


def snapshot_messages(
    version: int, returns: list[dict[str, Any]] | Iterator[dict[str, Any]], total: int, chunk_size: int
) -> Iterator[bytes]:
    chunks = max(1, -(-total // chunk_size))
    batch: list[dict[str, Any]] = []
    n = 0
    for ret in returns:
        batch.append(ret)
        if len(batch) == chunk_size:
            n += 1
            yield json.dumps({"version": version, "base_version": None, "chunk": n, "chunks": chunks,
                              "upserts": batch, "deletes": []}).encode()  # fmt: skip
            batch = []
    if batch or n == 0:
        n += 1
        yield json.dumps({"version": version, "base_version": None, "chunk": n, "chunks": chunks,
                          "upserts": batch, "deletes": []}).encode()  # fmt: skip


@dataclass
class DeviceLog:
    seqs: list[int] = field(default_factory=list)
    by_seq: dict[int, str] = field(default_factory=dict)
    event_ids: dict[str, bytes] = field(default_factory=dict)
    duplicates: int = 0
    inexact_duplicates: int = 0
    inexact: list[tuple[bytes, bytes]] = field(default_factory=list)
    """The first few repeats with other bytes: (as first received, as repeated)."""
    conflicts: int = 0
    out_of_order: int = 0
    events: list[dict[str, Any]] = field(default_factory=list)

    def add(self, payload: bytes) -> None:
        event = json.loads(payload)
        seq, event_id = event["seq"], event["event_id"]
        if event_id in self.event_ids:
            self.duplicates += 1
            if self.event_ids[event_id] != payload:
                self.inexact_duplicates += 1
                if len(self.inexact) < 10:
                    self.inexact.append((self.event_ids[event_id], payload))
            return
        self.event_ids[event_id] = payload
        if seq in self.by_seq and self.by_seq[seq] != event_id:
            self.conflicts += 1
        self.by_seq[seq] = event_id
        if self.seqs and seq < self.seqs[-1]:
            self.out_of_order += 1
        self.seqs.append(seq)
        self.events.append(event)

    def missing(self) -> list[int]:
        if not self.by_seq:
            return []
        return sorted(set(range(1, max(self.by_seq) + 1)) - set(self.by_seq))

    def report(self) -> dict[str, Any]:
        return {
            "unique": len(self.by_seq),
            "max_seq": max(self.by_seq) if self.by_seq else 0,
            "duplicates": self.duplicates,
            "inexact_duplicates": self.inexact_duplicates,
            "conflicts": self.conflicts,
            "out_of_order": self.out_of_order,
            "missing": self.missing()[:100],
        }


@dataclass
class ReceiptLog:
    """Receipt events of one device: each once by `event_id` (repeats must be the same bytes),
    numbered by a gapless `receipt_seq`."""

    by_id: dict[str, bytes] = field(default_factory=dict)
    receipts: list[dict[str, Any]] = field(default_factory=list)
    duplicates: int = 0
    inexact_duplicates: int = 0

    def add(self, payload: bytes) -> None:
        event = json.loads(payload)
        if event["event_id"] in self.by_id:
            self.duplicates += 1
            self.inexact_duplicates += self.by_id[event["event_id"]] != payload
            return
        self.by_id[event["event_id"]] = payload
        self.receipts.append(event)

    def missing(self) -> list[int]:
        seqs = {r["receipt_seq"] for r in self.receipts}
        return sorted(set(range(1, max(seqs) + 1)) - seqs) if seqs else []


class Dedupe:
    """The event ids a group of central consumers has handled, in one SQLite file they share."""

    def __init__(self, path: str, consumer: str) -> None:
        self.consumer = consumer
        self.db = sqlite3.connect(path, timeout=30, isolation_level=None, check_same_thread=False)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("CREATE TABLE IF NOT EXISTS handled (event_id TEXT PRIMARY KEY, device TEXT, seq INTEGER,"
                        " consumer TEXT, at REAL)")  # fmt: skip

    def first(self, device: str, event: dict[str, Any]) -> bool:
        """Record the event; True when no consumer of the group had handled it yet."""
        cur = self.db.execute(
            "INSERT OR IGNORE INTO handled VALUES (?,?,?,?,?)",
            (event["event_id"], device, event["seq"], self.consumer, time.time()),
        )
        return cur.rowcount == 1


class Central:
    """The central system's side of the contract, usable in-process by tests and benchmarks."""

    def __init__(
        self, host: str, port: int, site: str, client_id: str | None = None, persistent: bool = True,
        share: str | None = None, dedupe: Dedupe | None = None, extra_servers: tuple[tuple[str, int], ...] = (),
    ) -> None:  # fmt: skip
        self.site = site
        self.share = share
        self.dedupe = dedupe
        self.handled = 0
        self.skipped = 0
        self.version = 0
        self.returns: list[dict[str, Any]] = []
        self.chunk_size = 2000
        self.devices: dict[str, DeviceLog] = {}
        self.receipts: dict[str, ReceiptLog] = {}
        self.messages: list[tuple[str, bytes]] = []
        self.replies: dict[str, dict[str, Any]] = {}
        self.states: dict[str, dict[str, Any]] = {}
        self.requests: list[tuple[str, int | None]] = []
        self.serve_requests = True
        self._lock = threading.Lock()
        self._reply_topic = f"central/{site}/{uuid.uuid4().hex[:8]}/replies"
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=client_id or f"central-{site}-{uuid.uuid4().hex[:6]}",
            protocol=MQTTProtocolVersion.MQTTv5,
        )  # fmt: skip
        self.connected = threading.Event()
        self._connect(self.client, host, port, persistent)
        if not self.connected.wait(10):
            raise TimeoutError("central: no CONNACK")
        self.others: list[mqtt.Client] = []
        for n, (h, p) in enumerate(extra_servers, start=1):
            other = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"{self.client._client_id.decode()}-{n}",
                                protocol=MQTTProtocolVersion.MQTTv5)  # fmt: skip
            self._connect(other, h, p, persistent, wait=False)
            self.others.append(other)

    def _connect(
        self, client: mqtt.Client, host: str, port: int, persistent: bool, wait: bool = True
    ) -> None:
        client.reconnect_delay_set(1, 2)
        client.on_connect = self._on_connect
        client.on_message = self._on_message
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        props.SessionExpiryInterval = 3600 if persistent else 0
        if wait:
            client.connect(host, port, 30, clean_start=not persistent, properties=props)
        else:  # a broker of the pair may be down now: paho keeps trying in its thread
            client.connect_async(host, port, 30, clean_start=not persistent, properties=props)
        client.loop_start()

    def _on_connect(self, client: mqtt.Client, _u: Any, _f: Any, rc: Any, _p: Any) -> None:
        if rc.is_failure:
            return
        root = f"dock/v1/{self.site}/+"
        shared = f"$share/{self.share}/" if self.share else ""
        client.subscribe([(f"{shared}{root}/event/#", 1), (f"{root}/state", 1), (f"{shared}{root}/manifest/request", 1),
                          (f"{root}/config/reported", 1), (f"{root}/cmd/+/reply", 1), (f"{root}/printer/+/status", 1),
                          (self._reply_topic, 1)])  # fmt: skip
        if client is self.client:
            self.connected.set()

    def _on_message(self, _c: mqtt.Client, _u: Any, msg: mqtt.MQTTMessage) -> None:
        parts = msg.topic.split("/")
        with self._lock:
            self.messages.append((msg.topic, bytes(msg.payload)))
            if msg.topic == self._reply_topic or msg.topic.endswith("/reply"):
                reply = json.loads(msg.payload)
                self.replies[str(reply.get("request_id"))] = reply
            elif len(parts) >= 6 and parts[4:6] == ["event", "scan"]:
                if self.dedupe is not None and not self.dedupe.first(parts[3], json.loads(msg.payload)):
                    self.skipped += 1  # another consumer of the group (or this one, before) had it
                    return
                self.handled += 1
                self.devices.setdefault(parts[3], DeviceLog()).add(bytes(msg.payload))
            elif len(parts) >= 6 and parts[4:6] == ["event", "receipt"]:
                self.receipts.setdefault(parts[3], ReceiptLog()).add(bytes(msg.payload))
            elif len(parts) == 5 and parts[4] == "state" and msg.payload:
                self.states[parts[3]] = json.loads(msg.payload)
            elif parts[4:6] == ["manifest", "request"]:
                have = json.loads(msg.payload).get("have_version")
                self.requests.append((parts[3], have))
                if self.serve_requests and self.returns:
                    threading.Thread(target=self.publish_snapshot, daemon=True).start()

    # --- manifest ----------------------------------------------------------------------
    def generate(self, n: int, start: int = 1) -> None:
        self.returns = [make_return(i) for i in range(start, start + n)]
        self.version += 1

    def publish_snapshot(self, version: int | None = None) -> int:
        version = version or self.version
        sent = 0
        for body in snapshot_messages(version, self.returns, len(self.returns), self.chunk_size):
            self.client.publish(f"dock/v1/{self.site}/manifest", body, qos=1).wait_for_publish(30)
            sent += 1
        return sent

    def publish_delta(self, upserts: list[dict[str, Any]], deletes: list[str] | None = None) -> int:
        base = self.version
        self.version += 1
        body = {"version": self.version, "base_version": base, "chunk": 1, "chunks": 1,
                "upserts": upserts, "deletes": deletes or []}  # fmt: skip
        self.client.publish(f"dock/v1/{self.site}/manifest", json.dumps(body), qos=1).wait_for_publish(30)
        return self.version

    # --- commands ---------------------------------------------------------------------------
    def command(self, device: str, name: str, args: dict[str, Any] | None = None, timeout: float = 10.0,
                use_response_topic: bool = True) -> dict[str, Any]:  # fmt: skip
        request_id = uuid.uuid4().hex
        props = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
        if use_response_topic:
            props.ResponseTopic = self._reply_topic
            props.CorrelationData = request_id.encode()
        body = json.dumps({"request_id": request_id, "args": args or {}})
        self.client.publish(f"dock/v1/{self.site}/{device}/cmd/{name}", body, qos=1, properties=props)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if request_id in self.replies:
                    return self.replies.pop(request_id)
            time.sleep(0.01)
        raise TimeoutError(f"no reply to {name} from {device}")

    def report(self) -> dict[str, Any]:
        with self._lock:
            return {device: log.report() for device, log in self.devices.items()}

    def close(self) -> None:
        for client in [self.client, *self.others]:
            client.disconnect()
            client.loop_stop()


def run(args: argparse.Namespace) -> int:
    servers = [tuple(s.rsplit(":", 1)) for s in args.servers.split(",") if s] if args.servers else []
    endpoints = [(h, int(p)) for h, p in servers] or [(args.host, args.port)]
    consumer = args.consumer or f"central-{args.site}" + (
        f"-{args.share}-{uuid.uuid4().hex[:6]}" if args.share else ""
    )
    dedupe = Dedupe(args.dedupe_db, consumer) if args.dedupe_db else None
    central = Central(endpoints[0][0], endpoints[0][1], args.site, client_id=consumer, share=args.share,
                      dedupe=dedupe, extra_servers=tuple(endpoints[1:]))  # fmt: skip
    central.chunk_size = args.chunk
    if args.returns:
        central.generate(args.returns)
        emit("manifest", version=central.version, returns=len(central.returns))
        if args.labels_out:
            rng = random.Random(args.seed)
            with open(args.labels_out, "w", encoding="utf-8") as fh:
                for ret in central.returns:
                    fh.write(rng.choice(labels_of(ret)) + "\n")
        if args.publish:
            emit("snapshot", chunks=central.publish_snapshot())

    def reporter() -> None:
        while True:
            time.sleep(args.report_every)
            emit("report", devices=central.report())

    if args.report_every:
        threading.Thread(target=reporter, daemon=True).start()
    try:
        for line in sys.stdin if not args.duration else []:
            words = line.split(maxsplit=3)
            if not words:
                continue
            if words[0] == "cmd" and len(words) >= 3:
                cmd_args = json.loads(words[3]) if len(words) > 3 else {}
                try:
                    emit("reply", reply=central.command(words[1], words[2], cmd_args))
                except TimeoutError as exc:
                    emit("error", message=str(exc))
            elif words[0] == "snapshot":
                emit("snapshot", chunks=central.publish_snapshot())
            elif words[0] == "report":
                emit("report", devices=central.report())
            else:
                emit("error", message=f"unknown command {words[0]!r}")
        if args.duration:
            time.sleep(args.duration)
    except KeyboardInterrupt:
        pass
    emit("report", devices=central.report(), handled=central.handled, skipped=central.skipped)
    central.close()
    return 0


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=1883)
    p.add_argument("--site", default="hel1")
    p.add_argument("--servers", default="", help="host:port,host:port: one connection to each broker")
    p.add_argument("--share", help="consume the site's events through $share/GROUP/... (scale out)")
    p.add_argument("--dedupe-db", help="SQLite file of handled event ids, shared by the group")
    p.add_argument("--consumer", help="client id; the same after a restart resumes the broker session and the"
                                      " events queued for it")  # fmt: skip
    p.add_argument("--returns", type=int, default=0, help="generate this many expected returns")
    p.add_argument("--chunk", type=int, default=2000, help="returns per snapshot chunk")
    p.add_argument("--publish", action="store_true", help="publish the snapshot at start")
    p.add_argument("--labels-out", help="write one scannable label per return to this file")
    p.add_argument("--report-every", type=float, default=0.0, help="seconds between reports (0: at the end)")
    p.add_argument("--duration", type=float, default=0.0, help="run this long, ignoring stdin (0: until EOF)")
    p.add_argument("--seed", type=int, default=3)
    p.set_defaults(func=run)
