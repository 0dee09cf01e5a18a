"""The agent's configuration: one pydantic tree, loaded from YAML.

Every model forbids unknown keys, so a typo is an error that names its key, and every
field carries a docstring with its unit. `load_config` turns every problem into a
`ConfigError` whose entries read `printers[0].port: ...`.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from edge_agent.config.base import (
    KEY_NAMES,
    KID_PATTERN,
    NAME_PATTERN,
    UpdateConfig,
    _Model,
    _server,
    split_server,
)
from edge_agent.config.devices import (
    BuzzerAction,
    DisplayConfig,
    FeedbackConfig,
    PrinterConfig,
    ScannerConfig,
)
from edge_agent.config.receiving import ReceivingConfig
from edge_agent.config.scales import ScaleConfig
from edge_agent.config.yaml12 import Positions, YamlError, load_yaml, position_of
from edge_agent.errors import ConfigError

Mode = Literal["receive", "inspect", "restock", "reject"]


class DeviceConfig(_Model):
    id: str = Field(pattern=NAME_PATTERN)
    """This agent's device id, e.g. `dock-07` (MQTT topic segment)."""
    site: str = Field(pattern=NAME_PATTERN)
    """The warehouse's site id, e.g. `hel1` (MQTT topic segment)."""


class TlsConfig(_Model):
    ca: Path | None = None
    """CA certificate file (PEM) that signed the broker's certificate; none: the system store."""
    cert: Path | None = None
    """Client certificate file (PEM) for mutual TLS."""
    key: Path | None = None
    """Private key file (PEM) of the client certificate."""

    @model_validator(mode="after")
    def _cert_and_key_together(self) -> TlsConfig:
        if (self.cert is None) != (self.key is None):
            raise ValueError("cert and key must be given together")
        return self


class MqttConfig(_Model):
    host: str | None = None
    """Broker host name or address (or give `servers`)."""
    port: int = Field(default=1883, ge=1, le=65535)
    """Broker TCP port."""
    servers: list[Annotated[str, AfterValidator(_server)]] | None = Field(default=None, min_length=1)
    """Brokers of a cluster or a pair, each `host:port` (IPv6 as `[addr]:port`; the port defaults
    to 1883), used instead of `host`/`port`: the agent connects to the first that answers and
    moves to the next when it cannot connect or loses the connection."""
    username: str | None = None
    """User name for the broker, if it asks for one."""
    password: SecretStr | None = None
    """Password for the broker; never logged."""
    tls: TlsConfig | None = None
    """TLS settings; absent means a plain TCP connection."""
    keepalive_s: int = Field(default=30, ge=5, le=3600)
    """MQTT keepalive interval, seconds."""
    session_expiry_s: int = Field(default=7 * 24 * 3600, ge=0, le=0xFFFFFFFF)
    """How long the broker keeps this agent's session and queued QoS 1 messages, seconds."""
    protocol: Literal["5", "3.1.1"] = "5"
    """MQTT protocol version."""
    max_payload_bytes: int = Field(default=1024 * 1024, ge=1024)
    """Largest incoming message the agent acts on, bytes; larger ones are rejected."""

    @model_validator(mode="after")
    def _password_needs_user(self) -> MqttConfig:
        if self.password is not None and self.username is None:
            raise ValueError("password given without username")
        if self.host is None and not self.servers:
            raise ValueError("give the broker as host (and port) or as servers")
        return self

    def endpoints(self) -> list[tuple[str, int]]:
        """The brokers to try, in order."""
        if self.servers:
            return [split_server(s) for s in self.servers]
        assert self.host is not None
        return [(self.host, self.port)]


class StorageConfig(_Model):
    path: Path
    """Directory that holds the SQLite files; created if missing."""
    retention_days: int = Field(default=7, ge=1, le=365)
    """How long sent events are kept for `replay_events`, days."""
    max_size_mb: int | None = Field(default=None, ge=1)
    """Cap on agent.db, megabytes; none: the file system's free space is the limit. Past it new
    scans fail loudly (alert, status) and everything stored is kept."""


class LabelsConfig(_Model):
    keys: dict[str, str] = Field(default_factory=dict)
    """RET1 label keys: key id (1-8 of 0-9A-Z) to secret in hex (at least 16 bytes)."""
    sign_kid: str | None = None
    """Key id used to sign the RET1 labels this agent prints; must be one of `keys`."""

    @field_validator("keys")
    @classmethod
    def _check_keys(cls, keys: dict[str, str]) -> dict[str, str]:
        for kid, secret in keys.items():
            if not KID_PATTERN.match(kid):
                raise ValueError(f"key id {kid!r} must be 1-8 characters of 0-9A-Z")
            try:
                raw = bytes.fromhex(secret)
            except ValueError:
                raise ValueError(f"key {kid!r} is not hexadecimal") from None
            if len(raw) < 16:
                raise ValueError(f"key {kid!r} is {len(raw)} bytes; at least 16 are needed")
        return keys

    @model_validator(mode="after")
    def _sign_kid_known(self) -> LabelsConfig:
        if self.sign_kid is not None and self.sign_kid not in self.keys:
            raise ValueError(f"sign_kid {self.sign_kid!r} is not one of labels.keys")
        return self

    def secrets(self) -> dict[str, bytes]:
        return {kid: bytes.fromhex(secret) for kid, secret in self.keys.items()}


class RuleConfig(_Model):
    name: str = Field(min_length=1, max_length=64)
    """Rule name, reported as `rule` in the decoded payload."""
    pattern: str
    """Regular expression (Python syntax) that must match the whole payload."""
    keys: dict[str, str] = Field(default_factory=dict)
    """Named group of `pattern` to key name (return_id, order_number, tracking_number, sscc, gtin)."""

    @model_validator(mode="after")
    def _check_pattern(self) -> RuleConfig:
        try:
            compiled = re.compile(self.pattern)
        except re.error as exc:
            raise ValueError(f"pattern does not compile: {exc}") from None
        for group, key in self.keys.items():
            if group not in compiled.groupindex:
                raise ValueError(f"keys names group {group!r}, which pattern does not define")
            if key not in KEY_NAMES:
                raise ValueError(f"key {key!r} is not one of {', '.join(KEY_NAMES)}")
        return self


class PrintingConfig(_Model):
    poll_interval_s: float = Field(default=5.0, ge=0.2, le=3600)
    """How often each printer's status is asked while nothing is printing, seconds."""
    status_timeout_s: float = Field(default=3.0, ge=0.2, le=60)
    """A printer that has not answered a status request by then is `offline`, seconds."""
    status_fresh_s: float = Field(default=2.0, ge=0, le=60)
    """A `ready` answer younger than this is trusted for the next job instead of asking the printer
    again, seconds (0: ask before every job). Jobs in a burst go out at once; a printer that ran out
    of paper within this window holds the job (Zebra) or reports it at the next poll."""
    warehouse_name: str = ""
    """Printed as the addressee on return labels."""
    warehouse_address: str = ""
    """Printed under the warehouse name on return labels."""
    carrier_message: str = ""
    """A message to the carrier on return labels."""
    routing_slip_printer: str | None = None
    """Printer id or `role:{name}` that prints a routing slip for every `expected` scan; none: no slips."""
    max_pages: int = Field(default=20, ge=1, le=500)
    """A document with more pages is rejected (`bad_document`)."""
    max_document_kb: int = Field(default=8192, ge=16, le=65536)
    """A document or image larger than this (decoded) is rejected, kilobytes."""
    render_timeout_s: float = Field(default=60.0, ge=1, le=600)
    """A document not rasterised in this time is given up (`failed`) and its renderer restarted, seconds."""
    render_memory_mb: int = Field(default=768, ge=128, le=8192)
    """Address space the document renderer's process may use, megabytes: a hostile document ends
    that process, not the agent."""


class LogConfig(_Model):
    level: Literal["debug", "info", "warning", "error"] = "info"
    """Lowest level that is logged."""
    format: Literal["auto", "json", "console"] = "auto"
    """`auto`: the operator's console on a terminal (a line a scan, `logs/console.py`), JSON lines
    otherwise (journald); `console` and `json` force one or the other."""


class StationConfig(_Model):
    mode: Mode = "receive"
    """Station mode at first start; later changes persist in storage."""


REMOTE_DEFAULT_ALLOW = (
    "printers", "scanners", "templates", "rules", "station", "printing", "display", "telemetry_interval_s",
)  # fmt: skip


def _allowable(key: str) -> str:
    if key == "remote_config":
        raise ValueError("remote_config cannot allow itself; only the local file sets it")
    if key == "update":
        raise ValueError("update (the keys that may sign releases) is set by the local file only")
    if key not in AgentConfig.model_fields:
        raise ValueError(f"{key!r} is not a top-level configuration key")
    return key


class RemoteConfigConfig(_Model):
    allow: list[Annotated[str, AfterValidator(_allowable)]] = Field(
        default_factory=lambda: list(REMOTE_DEFAULT_ALLOW)
    )
    """Top-level keys that a desired configuration from the central system may set; a desired
    configuration that sets any other key is rejected whole. Not by default: `feedback` (its
    actions run programs on this machine), `labels` (the RET1 secrets), `mqtt`, `storage`,
    `device`, `log`; never `remote_config` itself (only this file may widen it)."""


class AgentConfig(_Model):
    device: DeviceConfig
    mqtt: MqttConfig
    storage: StorageConfig
    labels: LabelsConfig = Field(default_factory=LabelsConfig)
    scanners: list[ScannerConfig] = Field(default_factory=list)
    printers: list[PrinterConfig] = Field(default_factory=list)
    scales: list[ScaleConfig] = Field(default_factory=list)
    """The station's scales; a parcel scan is weighed on `receiving.scale` (or the first)."""
    rules: list[RuleConfig] = Field(default_factory=list)
    station: StationConfig = Field(default_factory=StationConfig)
    printing: PrintingConfig = Field(default_factory=PrintingConfig)
    templates: dict[str, Any] = Field(default_factory=dict)
    """Label templates by name (see config/templates/); they replace built-ins of the same name."""
    log: LogConfig = Field(default_factory=LogConfig)
    display: DisplayConfig = Field(default_factory=DisplayConfig)
    feedback: FeedbackConfig = Field(default_factory=FeedbackConfig)
    receiving: ReceivingConfig = Field(default_factory=ReceivingConfig)
    """Receipts: which scans open one, the condition grades, when an idle one closes, what prints."""
    telemetry_interval_s: int = Field(default=30, ge=1, le=3600)
    """Interval between telemetry messages, seconds."""
    remote_config: RemoteConfigConfig = Field(default_factory=RemoteConfigConfig)
    """What the central system may change with a desired configuration (mqtt.md, "Config")."""
    update: UpdateConfig = Field(default_factory=UpdateConfig)
    """Software updates under `edge-agent launch`; never settable remotely."""

    @model_validator(mode="after")
    def _unique_ids(self) -> AgentConfig:
        for kind, items in (
            ("scanners", self.scanners),
            ("printers", self.printers),
            ("scales", self.scales),
        ):
            seen: set[str] = set()
            for item in items:
                if item.id in seen:
                    raise ValueError(f"{kind}: id {item.id!r} is used twice")
                seen.add(item.id)
        names = [r.name for r in self.rules]
        if len(names) != len(set(names)):
            raise ValueError("rules: two rules have the same name")
        slip = self.printing.routing_slip_printer
        if slip is not None and not _printer_known(slip, self.printers):
            what = f"has role {slip[5:]!r}" if slip.startswith("role:") else repr(slip)
            raise ValueError(f"printing.routing_slip_printer: no printer {what}")
        scale = self.receiving.scale
        if scale is not None and scale not in {s.id for s in self.scales}:
            raise ValueError(f"receiving.scale: no scale {scale!r} in scales")
        printers = {p.id: p for p in self.printers}
        on_close = self.receiving.print_on_close
        if on_close is not None and not _printer_known(on_close.printer, self.printers):
            raise ValueError(f"receiving.print_on_close.printer: no printer {on_close.printer!r}")
        for outcome in FeedbackConfig.model_fields:
            for i, action in enumerate(self.feedback.actions(outcome)):
                if isinstance(action, BuzzerAction):
                    where = f"feedback.{outcome}[{i}].printer"
                    if action.printer not in printers:
                        raise ValueError(f"{where}: no printer {action.printer!r}")
                    if printers[action.printer].language != "escpos":
                        raise ValueError(f"{where}: {action.printer!r} is not an ESC/POS printer (no buzzer)")
                    if printers[action.printer].transport == "file":
                        raise ValueError(f"{where}: {action.printer!r} is a folder of files (no buzzer)")
        return self

    @field_validator("templates")
    @classmethod
    def _check_templates(cls, templates: dict[str, Any]) -> dict[str, Any]:
        from edge_agent.printing.templates import TemplateError, parse_template

        for name, raw in templates.items():
            if not isinstance(raw, dict):
                raise ValueError(f"template {name!r} must be a mapping")
            try:
                template = parse_template({"name": name, **raw}, name)
            except TemplateError as exc:
                raise ValueError(str(exc)) from None
            if template.name != name:
                raise ValueError(f"template {name!r} is named {template.name!r} inside")
        return templates


def _printer_known(name: str, printers: list[PrinterConfig]) -> bool:
    """A printer id, or `role:{name}` that some printer has."""
    if name.startswith("role:"):
        return any(name[5:] in p.roles for p in printers)
    return name in {p.id for p in printers}


_UNION_TAGS = {"serial", "hid", "tcp", "device", "file", "buzzer", "command"}


def _file_loc(loc: tuple[int | str, ...]) -> tuple[int | str, ...]:
    """pydantic's error location as keys of the file: a discriminated union's tag is not one."""
    out: list[int | str] = []
    for i, part in enumerate(loc):
        if isinstance(part, str) and part in _UNION_TAGS and i and isinstance(loc[i - 1], int):
            continue
        out.append(part)
    return tuple(out)


def _key_path(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in _file_loc(loc):
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def problems_of(exc: ValidationError, positions: Positions | None = None) -> list[tuple[str, str]]:
    problems = []
    for err in exc.errors(include_url=False):
        msg = err["msg"]
        if err["type"] == "extra_forbidden":
            msg = "unknown key"
        elif msg.startswith("Value error, "):
            msg = msg[len("Value error, ") :]
        where = position_of(positions, _file_loc(tuple(err["loc"]))) if positions else None
        if where is not None:
            msg += f" (line {where[0]}, column {where[1]})"
        problems.append((_key_path(tuple(err["loc"])), msg))
    return problems


def parse_config(data: Any, positions: Positions | None = None) -> AgentConfig:
    """Validate an already-parsed document; raises `ConfigError` naming each key (and, given the
    file's `positions`, its line and column)."""
    if not isinstance(data, dict):
        raise ConfigError([("", "the configuration must be a mapping of keys")])
    try:
        return AgentConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(problems_of(exc, positions)) from None


def read_yaml_at(path: Path) -> tuple[Any, Positions]:
    """The file as YAML 1.2 (yaml12.py), with where each key is."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError([("", f"cannot read {path}: {exc.strerror or exc}")]) from None
    except UnicodeDecodeError as exc:
        raise ConfigError([("", f"{path} is not UTF-8 text: {exc.reason} at byte {exc.start}")]) from None
    try:
        return load_yaml(text)
    except YamlError as exc:
        where = f" at line {exc.line}, column {exc.column}" if exc.line is not None else ""
        raise ConfigError([("", f"{path} is not valid YAML{where}: {exc.problem}")]) from None


def read_yaml(path: Path) -> Any:
    return read_yaml_at(path)[0]


def load_config(path: Path | str) -> AgentConfig:
    return parse_config(*read_yaml_at(Path(path)))
