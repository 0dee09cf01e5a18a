"""`scales:`: the station's scales (contract cli.md; ../shared/reference/scales.md). Serial
settings default to what each protocol's manuals give; every one can be set, since the scales
themselves are set differently in the field."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from edge_agent.config.base import NAME_PATTERN, _Model

# protocol -> (bytesize, parity): MT-SICS 8N1; Toledo 8217 7E1 (Odoo's driver, the DIVA manual);
# continuous-output indicators mostly ship 8N1 (A&D: 2400 7E1 is common too: set it)
SERIAL_DEFAULTS = {"sics": (8, "N"), "toledo8217": (7, "E"), "continuous": (8, "N")}


class _ScaleBase(_Model):
    id: str = Field(pattern=NAME_PATTERN)
    """Scale id, reported with every weight."""
    min_load_g: float = Field(default=20.0, ge=0, le=10000)
    """Below this the pan counts as empty: a parcel scan waits for more, grams."""
    reopen_max_s: float = Field(default=5.0, gt=0, le=300)
    """Longest wait between attempts to reopen a missing device, seconds."""


class SerialScaleConfig(_ScaleBase):
    type: Literal["serial"]
    protocol: Literal["sics", "toledo8217", "continuous"]
    """`sics` (Mettler Toledo MT-SICS, polled with `SI`), `toledo8217` (the scanner-scale protocol,
    polled with `W`) or `continuous` (an indicator that sends its weight line after line)."""
    port: str
    """Serial device path (e.g. `/dev/ttyUSB0` or a udev symlink such as `/dev/edge-agent/scale`)."""
    baudrate: int = Field(default=9600, gt=0)
    """Line speed, bits per second."""
    bytesize: Literal[7, 8] | None = None
    """Data bits; none: the protocol's usual (7 for toledo8217, else 8)."""
    parity: Literal["N", "E", "O"] | None = None
    """Parity; none: the protocol's usual (E for toledo8217, else N)."""
    stopbits: Literal[1, 2] = 1
    """Stop bits."""
    unit: Literal["kg", "lb", "g"] | None = None
    """toledo8217: the unit the scale sends (none: from the decimals, 3 kg, 2 lb)."""
    poll_interval_ms: int = Field(default=200, ge=20, le=10000)
    """sics, toledo8217: how often the weight is asked for, milliseconds."""
    offline_after_s: float = Field(default=2.0, gt=0, le=600)
    """A scale that answers nothing for this long is `offline`, seconds."""
    stable_count: int = Field(default=3, ge=2, le=50)
    """continuous lines without a stability flag: this many readings in a row agree = stable."""
    stable_tolerance_g: float = Field(default=2.0, ge=0, le=1000)
    """...within this many grams of each other."""

    @model_validator(mode="after")
    def _protocol_settings(self) -> SerialScaleConfig:
        if self.unit is not None and self.protocol != "toledo8217":
            raise ValueError("unit: only toledo8217 takes a unit (MT-SICS and continuous lines carry theirs)")
        return self

    def driver_options(self) -> dict[str, object]:
        bytesize, parity = SERIAL_DEFAULTS[self.protocol]
        return {"port": self.port, "protocol": self.protocol, "baudrate": self.baudrate,
                "bytesize": self.bytesize or bytesize, "parity": self.parity or parity,
                "stopbits": self.stopbits, "unit": self.unit, "poll_interval_s": self.poll_interval_ms / 1000,
                "silent_after_s": self.offline_after_s, "stable_count": self.stable_count,
                "stable_tolerance_g": self.stable_tolerance_g, "reopen_max_s": self.reopen_max_s}  # fmt: skip


class HidScaleConfig(_ScaleBase):
    type: Literal["hid"]
    device: str
    """hidraw node of a USB HID POS scale (`/dev/hidraw1`, or the udev symlink
    `/dev/edge-agent/scale-hid`), or a FIFO of 6-byte reports in simulation mode."""
    offline_after_s: float | None = Field(default=None, gt=0, le=600)
    """A scale that sends no report for this long is `offline`, seconds; none: only when its node
    goes away (many HID scales report only when the weight changes)."""

    def driver_options(self) -> dict[str, object]:
        return {
            "device": self.device,
            "silent_after_s": self.offline_after_s,
            "reopen_max_s": self.reopen_max_s,
        }


ScaleConfig = Annotated[SerialScaleConfig | HidScaleConfig, Field(discriminator="type")]
