"""Configuration of the devices at a station: scanners, printers, the station screen, feedback
actions (part of the one tree in config.py, which re-exports every name)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator

from edge_agent.config.base import NAME_PATTERN, _Model


class SerialScannerConfig(_Model):
    id: str = Field(pattern=NAME_PATTERN)
    """Scanner id, reported with every scan."""
    type: Literal["serial"]
    port: str
    """Serial device path (e.g. `/dev/ttyUSB0` or a udev symlink) or a pyserial URL."""
    baudrate: int = Field(default=9600, gt=0)
    """Line speed, bits per second."""
    prefix: str = ""
    """Characters the scanner is programmed to send before each payload; stripped."""
    suffix: str = ""
    """Characters the scanner sends after each payload instead of, or before, CR/LF."""
    max_frame_bytes: int = Field(default=4096, ge=16, le=65536)
    """Longest payload accepted, bytes; longer ones are dropped as line noise."""
    reopen_max_s: float = Field(default=5.0, gt=0, le=300)
    """Longest wait between attempts to reopen a missing port, seconds."""


class HidScannerConfig(_Model):
    id: str = Field(pattern=NAME_PATTERN)
    """Scanner id, reported with every scan."""
    type: Literal["hid"]
    device: str
    """Input event device (`/dev/input/by-id/...-event-kbd`), or a FIFO in simulation mode."""
    keymap: str = "us"
    """Keyboard layout the scanner is programmed for: any layout of the X keyboard configuration
    (`us`, `gb`, `de`, `fr`, `se`, `pl`, ...), a variant as `de(nodeadkeys)`."""
    inter_key_timeout_ms: int = Field(default=100, ge=5, le=5000)
    """A pause longer than this between keys ends a scan that has no Enter, milliseconds."""
    grab: bool = True
    """Grab the device exclusively so scans do not type into the console."""
    reopen_max_s: float = Field(default=5.0, gt=0, le=300)
    """Longest wait between attempts to reopen a missing device, seconds."""

    @field_validator("keymap")
    @classmethod
    def _known_layout(cls, value: str) -> str:
        from drivers.scanners.xkb import load_layout

        load_layout(value)  # LayoutError (a ValueError) names the layout xkb does not know
        return value


class HidPosScannerConfig(_Model):
    id: str = Field(pattern=NAME_PATTERN)
    """Scanner id, reported with every scan."""
    type: Literal["hidpos"]
    device: str
    """hidraw node of a scanner in USB HID POS mode (`/dev/hidraw0`, or the udev symlink
    `/dev/edge-agent/scanner-pos`), or a FIFO of 64-byte reports in simulation mode."""
    output_redirection: bool = True
    """Send Honeywell's output-redirection feature report (0xFE = 1) on open; scanners of other
    makes refuse it harmlessly."""
    reopen_max_s: float = Field(default=5.0, gt=0, le=300)
    """Longest wait between attempts to reopen a missing device, seconds."""


AnyScannerConfig = SerialScannerConfig | HidScannerConfig | HidPosScannerConfig
ScannerConfig = Annotated[AnyScannerConfig, Field(discriminator="type")]


class LabelSize(_Model):
    width_mm: float = Field(gt=10, le=300)
    """Printable width, millimetres."""
    height_mm: float | None = Field(default=None, gt=10, le=2000)
    """Label length, millimetres; none: a roll (ESC/POS), each page as long as it needs."""


class _PrinterBase(_Model):
    id: str = Field(pattern=NAME_PATTERN)
    """Printer id, used by print jobs."""
    language: Literal["zpl", "escpos"]
    """Printer command language."""
    roles: list[str] = Field(default_factory=list)
    """Roles for `role:{name}` routing of print jobs."""
    dpi: int = Field(default=203, ge=100, le=600)
    """Print head resolution, dots per inch (203, 300, 600): documents are rasterised at it."""
    label: LabelSize | None = None
    """The label documents are fitted to; none: 101.6 x 152.4 mm (4x6") on ZPL, 72 mm wide
    (80 mm paper) of any length on ESC/POS."""

    def label_dots(self) -> tuple[int, int | None]:
        """(width, length) in dots; length None for a roll."""
        size = self.label or (LabelSize(width_mm=101.6, height_mm=152.4) if self.language == "zpl"
                              else LabelSize(width_mm=72.0))  # fmt: skip
        # heads sold as 203, 300 and 600 dpi have 8, 12 and 24 dots a millimetre
        dots = {203: 8.0, 300: 12.0, 600: 24.0}.get(self.dpi, self.dpi / 25.4)
        width = int(size.width_mm * dots + 1e-6)
        return width, int(size.height_mm * dots + 1e-6) if size.height_mm else None


class TcpPrinterConfig(_PrinterBase):
    transport: Literal["tcp"]
    host: str
    """Printer host name or address."""
    port: int = Field(default=9100, ge=1, le=65535)
    """Raw printing TCP port."""


class SerialPrinterConfig(_PrinterBase):
    transport: Literal["serial"]
    port: str
    """Serial device path of the printer."""
    baudrate: int = Field(default=9600, gt=0)
    """Line speed, bits per second."""


class DevicePrinterConfig(_PrinterBase):
    transport: Literal["device"]
    path: str
    """Character device of the printer, e.g. `/dev/usb/lp0`."""


class FilePrinterConfig(_PrinterBase):
    transport: Literal["file"]
    path: Path
    """Folder that receives every job as a file (a label library; no printer)."""


class _OfficePrinterBase(_Model):
    id: str = Field(pattern=NAME_PATTERN)
    """Printer id, used by print jobs."""
    language: Literal["pdf"] = "pdf"
    """Office printers take PDF documents; templates are rendered as PDF pages for them."""
    roles: list[str] = Field(default_factory=list)
    """Roles for `role:{name}` routing of print jobs."""
    paper: Literal["a4", "letter"] = "a4"
    """Paper templates are laid out on."""


class IppPrinterConfig(_OfficePrinterBase):
    transport: Literal["ipp"]
    url: str = Field(pattern=r"^ipps?://[^/\s]+(/\S*)?$")
    """The printer's IPP URL, e.g. `ipp://10.0.0.30:631/ipp/print` (IPP Everywhere)."""

    def ipp_url(self) -> str:
        return self.url


class CupsPrinterConfig(_OfficePrinterBase):
    transport: Literal["cups"]
    queue: str = Field(pattern=r"^[A-Za-z0-9_.-]{1,127}$")
    """A queue of this machine's CUPS (`lpstat -p` lists them); printed to over IPP on localhost:631."""

    def ipp_url(self) -> str:
        return f"ipp://localhost:631/printers/{self.queue}"


PrinterConfig = Annotated[
    TcpPrinterConfig
    | SerialPrinterConfig
    | DevicePrinterConfig
    | FilePrinterConfig
    | IppPrinterConfig
    | CupsPrinterConfig,
    Field(discriminator="transport"),
]


class DisplayConfig(_Model):
    """The station display: a page for a screen in kiosk mode at the station."""

    enabled: bool = True
    """Serve the page; off on agents with no screen."""
    host: str = "127.0.0.1"
    """Address the page is served on; `0.0.0.0` lets another machine show it (then set `token`)."""
    port: int = Field(default=8080, ge=1, le=65535)
    """TCP port of the page."""
    dim_after_s: float = Field(default=20.0, ge=0, le=3600)
    """Seconds after which the last result is dimmed, so an old result is not taken for the parcel
    in hand; 0: never."""
    title: str | None = Field(default=None, max_length=64)
    """Header text; none: `site / device`."""
    language: Literal["en", "fi", "sv", "nb", "da", "de"] = "en"
    """The page's language (its texts from edge_agent/display/catalogs/, dates, times and numbers in
    the locale's form): English, Finnish, Swedish, Norwegian Bokmål, Danish, German."""
    sound: bool = True
    """A short sound for each result on the page (Web Audio), for a station with a screen but no
    buzzer; the browser plays it after the first touch or key on the page."""
    token: SecretStr | None = Field(default=None, min_length=16)
    """Shared secret, at least 16 characters. When the page is served on anything but loopback,
    the page, `/api/state` and `/events` answer only requests that carry it (`?token=...` in the
    kiosk's URL, or `Authorization: Bearer ...`); never logged."""


class BuzzerAction(_Model):
    type: Literal["buzzer"]
    printer: str = Field(pattern=NAME_PATTERN)
    """Id of an ESC/POS printer whose buzzer sounds (ESC B n t; sent between print jobs)."""
    beeps: int = Field(default=1, ge=1, le=9)
    """Number of beeps."""
    duration: int = Field(default=2, ge=1, le=9)
    """Length of each beep, in the printer's unit (about 50 to 100 ms on Epson-compatible models)."""


class CommandAction(_Model):
    type: Literal["command"]
    argv: list[str] = Field(min_length=1)
    """Program and arguments, run without a shell; the scan is in the environment (EDGE_OUTCOME,
    EDGE_MODE, EDGE_SEQ, EDGE_EVENT_ID, EDGE_SCANNER, EDGE_RETURN_ID, EDGE_ORDER_NUMBER)."""
    timeout_s: float = Field(default=5.0, gt=0, le=300)
    """Seconds after which the command is killed."""

    @field_validator("argv")
    @classmethod
    def _program_named(cls, argv: list[str]) -> list[str]:
        if not argv[0].strip():
            raise ValueError("the program (argv[0]) is empty")
        return argv


FeedbackAction = Annotated[BuzzerAction | CommandAction, Field(discriminator="type")]


class FeedbackConfig(_Model):
    """What happens, beyond the display, on each outcome: e.g. a buzzer for a bad read, a stack
    light for every outcome. Empty lists: nothing."""

    expected: list[FeedbackAction] = Field(default_factory=list)
    """Actions for an expected return."""
    duplicate: list[FeedbackAction] = Field(default_factory=list)
    """Actions for a return already received at this station in this mode."""
    unknown: list[FeedbackAction] = Field(default_factory=list)
    """Actions for a valid label that matches nothing expected."""
    invalid: list[FeedbackAction] = Field(default_factory=list)
    """Actions for a bad read (check digit, signature, syntax)."""
    command: list[FeedbackAction] = Field(default_factory=list)
    """Actions for a station command barcode (mode change)."""
    item: list[FeedbackAction] = Field(default_factory=list)
    """Actions for an item scan counted on the open receipt."""
    extra_item: list[FeedbackAction] = Field(default_factory=list)
    """Actions for an item scan the open receipt does not expect (not in the return, one too many,
    a wrong serial)."""

    weight_light: list[FeedbackAction] = Field(default_factory=list)
    """Actions for a parcel that weighs less than its return should (`check: light`), after its
    outcome's own."""
    weight_heavy: list[FeedbackAction] = Field(default_factory=list)
    """Actions for a parcel that weighs more than its return should (`check: heavy`)."""

    def actions(self, outcome: str) -> list[BuzzerAction | CommandAction]:
        return list(getattr(self, outcome, []))
