"""`edge-agent`: run, check-config, decode (contract cli.md)."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, TextIO

from edge_agent import __version__
from edge_agent.config import AgentConfig, ReceivingConfig, load_config
from edge_agent.decode import Decoded, Decoder
from edge_agent.errors import ConfigError

EXIT_OK = 0
EXIT_FAIL = 1
EXIT_CONFIG = 2


def _print_config_errors(path: str, exc: ConfigError, stream: TextIO) -> None:
    print(f"{path}: {len(exc.problems)} error(s)", file=stream)
    for key, message in exc.problems:
        print(f"{key}: {message}" if key else message, file=stream)


def _load(path: str, report_to: TextIO | None = None) -> AgentConfig | None:
    try:
        return load_config(path)
    except ConfigError as exc:
        _print_config_errors(path, exc, report_to or sys.stderr)
        return None


def cmd_doctor(args: argparse.Namespace) -> int:
    from edge_agent.doctor.model import Report, fail
    from edge_agent.doctor.run import print_report, run_doctor
    from edge_agent.logs import setup_logging

    setup_logging("error", "auto", sys.stderr)  # the drivers' own lines would mix into the report

    try:
        config = load_config(args.config)
    except ConfigError as exc:
        if not args.json:
            _print_config_errors(args.config, exc, sys.stdout)
            return EXIT_CONFIG
        report = Report()
        for key, message in exc.problems:
            report.add(fail("config", f"{key}: {message}" if key else message, "fix the configuration file"))
        print_report(report, sys.stdout, as_json=True)
        return EXIT_CONFIG
    report = run_doctor(Path(args.config), config)
    print_report(report, sys.stdout, as_json=args.json)
    return 1 if report.failed else EXIT_OK


def cmd_check_config(args: argparse.Namespace) -> int:
    config = _load(args.config, report_to=sys.stdout)  # the report is this command's output
    if config is None:
        return EXIT_CONFIG
    print("ok")
    for warning in config_warnings(config):
        print(f"warning: {warning}", file=sys.stderr)
    return EXIT_OK


_RISKY_REMOTE = {
    "feedback": "its actions run programs on this machine",
    "labels": "it holds the RET1 label secrets",
    "mqtt": "a wrong broker cuts the agent off for good",
    "storage": "it moves or caps where scans are kept",
    "device": "it renames the agent in the fleet",
    "log": "it can silence the agent's log",
}


def config_warnings(config: AgentConfig) -> list[str]:
    """Valid but risky settings, said once by check-config (and logged at start)."""
    out = []
    for key in config.remote_config.allow:
        if key in _RISKY_REMOTE:
            out.append(f"remote_config.allow includes {key!r}: {_RISKY_REMOTE[key]}, and whoever may publish"
                       " config/desired for this agent can now change it")  # fmt: skip
    from edge_agent.display.server import is_loopback

    display = config.display
    if display.enabled and not is_loopback(display.host) and not display.token:
        out.append(f"display.host {display.host} is reachable from the network and display.token is not set:"
                   " anyone there can read the station page")  # fmt: skip
    return out


def cmd_run(args: argparse.Namespace) -> int:
    config = _load(args.config)
    if config is None:
        return EXIT_CONFIG
    from edge_agent.app import Agent, run_until_signalled
    from edge_agent.logs import setup_logging

    setup_logging(config.log.level, config.log.format)
    _warn_if_secrets_readable(Path(args.config), config)
    _few_malloc_arenas()
    asyncio.run(run_until_signalled(Agent(config, Path(args.config))))
    return EXIT_OK


def _few_malloc_arenas() -> None:
    """glibc gives each thread that allocates its own malloc arena (up to eight per core), and each
    keeps its pages resident; the agent's threads (SQLite writers and readers, paho's) allocate
    little. Two arenas, set before any of them starts, as MALLOC_ARENA_MAX=2 would: 0.4-0.6 MB
    less RSS on a 45 MB agent (bench/footprint.py). Elsewhere than glibc it does nothing."""
    import contextlib
    import ctypes

    m_arena_max = -8
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None).mallopt(m_arena_max, 2)


def cmd_launch(args: argparse.Namespace) -> int:
    config = _load(args.config)
    if config is None:
        return EXIT_CONFIG
    from edge_agent.logs import setup_logging
    from edge_agent.update import launch

    setup_logging(config.log.level, config.log.format)
    folder = config.update.releases_dir
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / ".write-test"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        print(f"update.releases_dir: cannot write {folder}: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_CONFIG
    asyncio.run(launch(Path(args.config).resolve(), config.update, Path(config.storage.path)))
    return EXIT_OK


def _warn_if_secrets_readable(path: Path, config: AgentConfig) -> None:
    has_secrets = config.mqtt.password is not None or bool(config.labels.keys)
    try:
        mode = path.stat().st_mode
    except OSError:
        return
    if has_secrets and mode & 0o004:
        import structlog

        structlog.get_logger("edge_agent.cli").warning(
            "config.readable_by_others", component="agent", path=str(path), mode=oct(mode & 0o777),
            advice="the file holds secrets (broker password, label keys): chmod 640 and chgrp edge-agent",
        )  # fmt: skip


def cmd_acl(args: argparse.Namespace) -> int:
    """Mosquitto ACL blocks: each agent its own root, and its site's manifest to read."""
    import re

    name = re.compile(r"^[a-z0-9][a-z0-9_-]{0,31}$")
    for value in (args.site, *args.device):
        if not name.match(value):
            print(f"{value!r} is not a valid site or device id", file=sys.stderr)
            return EXIT_CONFIG
    print(f"user central-{args.site}\ntopic readwrite dock/v1/{args.site}/#\n")
    for device in args.device:
        print(f"user dock-{args.site}-{device}\ntopic readwrite dock/v1/{args.site}/{device}/#\n"
              f"topic read dock/v1/{args.site}/manifest\n")  # fmt: skip
    return EXIT_OK


def cmd_status(args: argparse.Namespace) -> int:
    config = _load(args.config)
    if config is None:
        return EXIT_CONFIG
    from edge_agent.status import read_status, render_status

    report = read_status(Path(config.storage.path))
    if args.json:
        print(json.dumps(report, indent=None, separators=(",", ":")))
    else:
        print(render_status(report))
    return EXIT_OK


def _stdin_payloads() -> Iterator[bytes]:
    data = sys.stdin.buffer.read()
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    yield from lines


def _human(decoded: Decoded) -> str:
    status = "valid" if decoded.valid else "INVALID"
    keys = " ".join(f"{k}={v}" for k, v in decoded.keys.items())
    line = f"{decoded.kind:<12} {status:<7} {decoded.raw!r}"
    if keys:
        line += f"  {keys}"
    if decoded.error:
        line += f"  ({decoded.error})"
    return line


def cmd_decode(args: argparse.Namespace) -> int:
    decoder = Decoder()
    if args.config:
        config = _load(args.config)
        if config is None:
            return EXIT_CONFIG
        from edge_agent.app import decoder_for

        decoder = decoder_for(config)
    payloads: Iterable[str | bytes] = args.payload if args.payload else _stdin_payloads()
    out = sys.stdout
    for payload in payloads:
        decoded = decoder.decode(payload)
        if args.json:
            out.write(json.dumps(decoded.to_dict(), separators=(",", ":")) + "\n")
        else:
            out.write(_human(decoded) + "\n")
    out.flush()
    return EXIT_OK


def _grade_fields(grades: list[str]) -> dict[str, str]:
    """`grade_1`... for templates that print the station's grades (the command sheet)."""
    return {f"grade_{n}": grade for n, grade in enumerate(grades, start=1)}


def cmd_render(args: argparse.Namespace) -> int:
    from edge_agent.printing.render_escpos import render_escpos
    from edge_agent.printing.render_png import render_png
    from edge_agent.printing.render_zpl import render_zpl
    from edge_agent.printing.templates import (
        TemplateError,
        builtin_templates,
        fill,
        parse_template,
        with_site_templates,
    )

    templates = dict(builtin_templates())
    station: dict[str, Any] = {"station": "", **_grade_fields(ReceivingConfig().grades)}
    if args.config:
        config = _load(args.config)
        if config is None:
            return EXIT_CONFIG
        templates = dict(with_site_templates(config.templates))
        station = {"station": config.device.id, **_grade_fields(config.receiving.grades)}
    if args.template_file:
        from edge_agent.config.yaml12 import loads

        from_file = parse_template(
            loads(Path(args.template_file).read_text(encoding="utf-8")), args.template_file
        )
        templates[from_file.name] = from_file
        args.template = args.template or from_file.name
    template = templates.get(args.template or "")
    if template is None:
        print(f"no template {args.template!r}; known: {', '.join(sorted(templates))}", file=sys.stderr)
        return EXIT_CONFIG
    try:
        data = json.loads(args.data)
        if not isinstance(data, dict):
            raise ValueError("--data must be a JSON object")
        label = fill(template, {**station, **data})
    except (ValueError, TemplateError) as exc:
        print(f"cannot render {template.name}: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    if args.lang == "pdf":
        from edge_agent.printing.render_pdf import render_pdf

        output = render_pdf([label], args.paper)
    else:
        output = {"zpl": render_zpl, "escpos": render_escpos, "png": render_png}[args.lang](label)
    if args.output == "-":
        sys.stdout.buffer.write(output)
    else:
        Path(args.output).write_bytes(output)
    return EXIT_OK


def cmd_print(args: argparse.Namespace) -> int:
    """Straight to the printer, without the central system or a running agent: for an operator
    trying a document or a label size. Rasterised in this process, as the agent's renderer would."""
    import asyncio

    from edge_agent.printing.documents import DocumentError
    from edge_agent.printing.documents.pages import MAX_PAGE_PIXELS, Profile, render
    from edge_agent.printing.worker import driver_for

    config = _load(args.config)
    if config is None:
        return EXIT_CONFIG
    printer = next((p for p in config.printers if p.id == args.printer), None)
    if printer is None:
        print(
            f"no printer {args.printer!r}; known: {', '.join(p.id for p in config.printers)}", file=sys.stderr
        )
        return EXIT_CONFIG
    data = Path(args.file).read_bytes()
    kind = (
        "pdf"
        if data.startswith(b"%PDF")
        else "image"
        if data[:4] in (b"\x89PNG", b"\xff\xd8\xff\xe0", b"\xff\xd8\xff\xe1")
        else "raw"
    )
    try:
        if kind == "raw":
            output = data * args.copies
        elif printer.language == "pdf":
            output = render(
                kind,
                data,
                Profile("pdf", 0, 0, None, config.printing.max_pages, MAX_PAGE_PIXELS),
                args.copies,
            )
        else:
            width, height = printer.label_dots()
            profile = Profile(
                printer.language, printer.dpi, width, height, config.printing.max_pages, MAX_PAGE_PIXELS
            )
            output = render(kind, data, profile, args.copies)
    except DocumentError as exc:
        print(f"cannot print {args.file}: {exc}", file=sys.stderr)
        return EXIT_FAIL

    async def send() -> str:
        driver = driver_for(printer, config.printing.status_timeout_s)
        await driver.open()
        try:
            status = await driver.status()
            if not status.ready:
                return f"printer {printer.id} is {status.state}: {status.detail}"
            await driver.send(output, name=Path(args.file).name)
            return ""
        finally:
            await driver.close()

    try:
        problem = asyncio.run(send())
    except Exception as exc:  # NotSent, PartlySent: the operator is told, whatever it was
        problem = f"{type(exc).__name__}: {exc}"
    if problem:
        print(problem, file=sys.stderr)
        return EXIT_FAIL
    print(f"sent {len(output)} bytes of {args.file} ({kind}) to {printer.id}")
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="edge-agent", description="Dock edge agent")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("run", help="run the daemon in the foreground until SIGTERM/SIGINT")
    p.add_argument("-c", "--config", required=True, help="configuration file (YAML)")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("launch", help="run the current release's agent; switch releases on update/rollback")
    p.add_argument("-c", "--config", required=True, help="configuration file (YAML)")
    p.set_defaults(func=cmd_launch)

    p = sub.add_parser("check-config", help="validate a configuration file")
    p.add_argument("-c", "--config", required=True, help="configuration file (YAML)")
    p.set_defaults(func=cmd_check_config)

    p = sub.add_parser("doctor", help="check the station: config, devices, broker, clock, storage, page port")
    p.add_argument("-c", "--config", required=True, help="configuration file (YAML)")
    p.add_argument(
        "--json", action="store_true", help="one JSON object: {ok, checks: [{check, status, detail, fix}]}"
    )
    p.set_defaults(func=cmd_doctor)

    p = sub.add_parser("status", help="what the agent's storage holds (works with or without the daemon)")
    p.add_argument("-c", "--config", required=True, help="configuration file (YAML)")
    p.add_argument("--json", action="store_true", help="one JSON object")
    p.set_defaults(func=cmd_status)

    p = sub.add_parser(
        "render", help="render a label template to ZPL, ESC/POS, PNG or PDF, without a printer"
    )
    p.add_argument("--template", help="template name (built-in, or from -c / --template-file)")
    p.add_argument("--template-file", help="a template YAML file")
    p.add_argument("--data", default="{}", help="the job's data, a JSON object")
    p.add_argument("--lang", choices=("zpl", "escpos", "png", "pdf"), required=True)
    p.add_argument("--paper", choices=("a4", "letter"), default="a4", help="--lang pdf: the page")
    p.add_argument("-o", "--output", default="-", help="output file; - for standard output")
    p.add_argument("-c", "--config", help="add the templates of this configuration")
    p.set_defaults(func=cmd_render)

    p = sub.add_parser(
        "print", help="print a document (PDF, PNG, JPEG, or raw .zpl/.bin) on a configured printer"
    )
    p.add_argument("file", help="the document")
    p.add_argument("--printer", required=True, help="printer id from the configuration")
    p.add_argument("--copies", type=int, default=1)
    p.add_argument("-c", "--config", required=True, help="configuration file (YAML)")
    p.set_defaults(func=cmd_print)

    p = sub.add_parser("acl", help="print Mosquitto ACL entries for a site's agents and central system")
    p.add_argument("site")
    p.add_argument("device", nargs="+")
    p.set_defaults(func=cmd_acl)

    p = sub.add_parser("decode", help="decode barcode payloads (arguments, or one per line on stdin)")
    p.add_argument("--json", action="store_true", help="one JSON object per payload (labels.md)")
    p.add_argument("-c", "--config", help="add RET1 keys and rules from this configuration")
    p.add_argument("payload", nargs="*", help="payloads; none: read standard input")
    p.set_defaults(func=cmd_decode)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    code: int = args.func(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
