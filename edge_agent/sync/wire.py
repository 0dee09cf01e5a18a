"""paho's client with the socket handling the agent's latency and drain figures need.

paho-mqtt reads a packet in several `recv` calls (the fixed header byte, each byte of the
remaining length, then the rest), writes each packet with its own `send`, and has every packet
queued from any thread wake its network thread through a socket pair. For a dock that sends events
one at a time and drains backlogs of 100,000, this subclass:

- reads the socket in chunks of up to 64 KiB and serves paho's small reads from that buffer
  (one `recv` for a burst of PUBACKs instead of three per PUBACK), at most `READ_SYSCALLS` socket
  reads per turn so that writes get their turn while a manifest streams in; every byte buffered
  is handed to paho before the turn ends, because paho's `select` only watches the socket;
- acknowledges at once every TCP segment it reads (TCP_QUICKACK, re-armed after each read: the
  kernel leaves quick-ack mode by itself). Brokers (Mosquitto by default) write with Nagle on: a
  print job published right after the broker's PUBACK for one of our events waited until our TCP
  acknowledged that PUBACK, which Linux delays up to 40 ms (bench/print.py: job arrival to first
  byte p50 25 ms, in a 40 ms sawtooth);
- writes the packets queued by another thread (the writer thread handing over a scan's event, the
  event loop) from that thread at once, instead of waking paho's thread to write them: the
  hand-over to a thread that must first get the GIL cost a scan event 0.2-0.3 ms on its way to
  the broker (bench/sync.py). A thread that finds the write lock taken leaves its packet to
  paho's thread, which it then wakes. Packets queued in paho's own thread need no wake-up: they
  are written at the end of the read turn;
- writes all queued packets in one `send` where it can (PUBLISH at QoS 1, acknowledgements,
  pings), so a drain sends the dozen events released by a burst of PUBACKs in one segment.

TLS sockets are read and written by paho's thread alone (an SSL object must not read in one
thread and write in another at once).
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import threading
import time
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import MQTTErrorCode

READ_SYSCALLS = 4
"""Socket reads per turn of paho's loop before its writes get a turn."""
CHUNK = 65536
WRITE_BATCH = 64
"""Packets joined into one send at most."""

_QUICKACK: int | None = getattr(socket, "TCP_QUICKACK", None)
_PUBLISH = 0x30
_DISCONNECT = 0xE0


class LinkClient(mqtt.Client):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._write_lock = threading.Lock()
        self._rbuf = b""
        self._rpos = 0
        self._recv_budget = READ_SYSCALLS

    # --- reading (paho's thread) -------------------------------------------------------------
    def loop_read(self, max_packets: int = 1) -> MQTTErrorCode:
        """Packets until the socket and the buffer are empty or the turn's socket reads are spent;
        what is queued meanwhile (PUBACKs, events released by PUBACKs) is written at the end."""
        self._recv_budget = READ_SYSCALLS
        try:
            while True:
                if self._sock is None:
                    return MQTTErrorCode.MQTT_ERR_NO_CONN
                rc = self._packet_read()
                if rc > 0:
                    return self._loop_rc_handle(rc)
                if rc == MQTTErrorCode.MQTT_ERR_AGAIN:
                    return MQTTErrorCode.MQTT_ERR_SUCCESS
        finally:
            if self._sock is not None and self._out_packet:
                self.loop_write()

    def _sock_recv(self, bufsize: int) -> bytes:
        if self._rpos < len(self._rbuf):
            end = self._rpos + bufsize
            data = self._rbuf[self._rpos : end]
            self._rpos = end
            return data
        if self._recv_budget <= 0:
            raise BlockingIOError  # the turn is over; paho's select wakes us for the rest
        self._recv_budget -= 1
        if bufsize >= CHUNK:  # a large payload: straight into paho's buffer
            data = super()._sock_recv(bufsize)
            self._quickack()
            return data
        chunk = super()._sock_recv(CHUNK)
        self._quickack()
        self._rbuf, self._rpos = chunk, min(bufsize, len(chunk))
        return chunk[:bufsize]

    def _quickack(self) -> None:
        sock: Any = self._sock
        if sock is not None and _QUICKACK is not None:
            with contextlib.suppress(OSError, AttributeError):
                sock.setsockopt(socket.IPPROTO_TCP, _QUICKACK, 1)

    # --- writing (any thread) ----------------------------------------------------------------
    def _packet_queue(
        self, command: int, packet: bytes | bytearray, mid: int, qos: int, info: Any = None
    ) -> MQTTErrorCode:
        sock = self._sock
        if sock is None or self._thread is None or isinstance(sock, ssl.SSLSocket):
            return super()._packet_queue(command, packet, mid, qos, info)
        entry = {"command": command, "mid": mid, "qos": qos, "pos": 0, "to_process": len(packet),
                 "packet": packet, "info": info}  # fmt: skip
        if threading.current_thread() is self._thread:
            self._out_packet.append(entry)  # type: ignore[arg-type]  # written at the end of this turn
            return MQTTErrorCode.MQTT_ERR_SUCCESS
        locked = self._write_lock.acquire(blocking=False)
        self._out_packet.append(entry)  # type: ignore[arg-type]
        if locked:
            try:
                # an error leaves the packet queued: paho's thread meets it too and handles it
                self._write_queued()
            finally:
                self._write_lock.release()
        if self._out_packet:  # another thread is writing, or not all went out: paho's thread goes on
            self._wake_network_thread()
        return MQTTErrorCode.MQTT_ERR_SUCCESS

    def _wake_network_thread(self) -> None:
        if self._sockpairW is not None:
            with contextlib.suppress(BlockingIOError, OSError):
                self._sockpairW.send(b"0")

    def _packet_write(self) -> MQTTErrorCode:
        with self._write_lock:
            return self._write_queued()

    def _write_queued(self) -> MQTTErrorCode:
        """Under `_write_lock`: runs of plain packets joined into one send, then paho's own write
        for the rest (a QoS 0 PUBLISH calls on_publish when written, a DISCONNECT closes)."""
        queue = self._out_packet
        while len(queue) > 1:
            batch = []
            for i in range(min(len(queue), WRITE_BATCH)):
                packet = queue[i]
                kind = packet["command"] & 0xF0
                if kind == _DISCONNECT or (kind == _PUBLISH and packet["qos"] == 0):
                    break
                batch.append(packet)
            if len(batch) < 2:
                break
            data = b"".join(p["packet"][p["pos"] :] for p in batch)
            try:
                sent = self._sock_send(data)
            except BlockingIOError:
                return MQTTErrorCode.MQTT_ERR_AGAIN
            except (AttributeError, ValueError):
                return MQTTErrorCode.MQTT_ERR_SUCCESS
            except OSError:
                return MQTTErrorCode.MQTT_ERR_CONN_LOST
            for packet in batch:
                n = min(sent, packet["to_process"])
                packet["pos"] += n
                packet["to_process"] -= n
                sent -= n
                if packet["to_process"]:
                    break
                queue.popleft()
            with self._msgtime_mutex:
                self._last_msg_out = time.monotonic()
        return super()._packet_write()
