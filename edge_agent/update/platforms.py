"""Which wheels fit which machine: the target of a release build, and the device's own check.

Theory of operation. A wheel's file name carries its compatibility tags (PEP 425: interpreter,
ABI, platform, e.g. `cp311-abi3-manylinux_2_28_aarch64`). A machine accepts a wheel when one of
the wheel's tags is among the tags its interpreter supports; `packaging.tags` knows that set for
the running interpreter (`sys_tags`) and can build it for another one (`cpython_tags` and
`compatible_tags` with explicit platforms). This module does both ends with the same code:

- the build names a `Target` (`linux_aarch64` for the docks' Raspberry Pi OS, `linux_x86_64`),
  passes its platforms and Python to `pip download` and then checks every gathered wheel against
  the target's tags, so a bundle cannot hold a wheel its docks would refuse;
- the device, before it installs anything, checks every wheel's tags against its own interpreter
  (`first_misfit` with `sys_tags()`), and refuses the whole bundle at the first misfit.

Platforms are manylinux ones (PEP 600) up to the target's glibc, plus the bare `linux_ARCH` tag
a wheel built on such a machine carries (`pip wheel` on a Pi). The glibc is that of Debian 12 and
Raspberry Pi OS 12 (bookworm), 2.36; a wheel needing a newer one is refused by the build, and by
a device whose glibc is older.
"""

from __future__ import annotations

import platform
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cached_property

from packaging.tags import Tag, compatible_tags, cpython_tags, sys_tags
from packaging.utils import InvalidWheelFilename, parse_wheel_filename

ARCHS = ("aarch64", "x86_64")
BOOKWORM_GLIBC = (2, 36)
# the pre-PEP 600 names of manylinux_2_17 / 2_12 / 2_5 (a wheel may carry only those)
LEGACY = {(2, 17): "manylinux2014", (2, 12): "manylinux2010", (2, 5): "manylinux1"}


class PlatformError(ValueError):
    """A target that cannot be built for, or a wheel whose name is not a wheel's."""


@dataclass(frozen=True)
class Target:
    arch: str
    python: tuple[int, int]
    glibc: tuple[int, int] = BOOKWORM_GLIBC

    @property
    def name(self) -> str:
        """`linux_aarch64`: the platform as release.json and `--platform` name it."""
        return f"linux_{self.arch}"

    @property
    def python_text(self) -> str:
        return f"{self.python[0]}.{self.python[1]}"

    @property
    def platforms(self) -> list[str]:
        """Platform tags, most specific first, as pip's `--platform` takes them."""
        oldest = 5 if self.arch == "x86_64" else 17  # manylinux for aarch64 starts at 2.17
        out = [f"linux_{self.arch}"]
        for minor in range(self.glibc[1], oldest - 1, -1):
            out.append(f"manylinux_{self.glibc[0]}_{minor}_{self.arch}")
            legacy = LEGACY.get((self.glibc[0], minor))
            if legacy and (self.arch == "x86_64" or minor == 17):
                out.append(f"{legacy}_{self.arch}")
        return out

    @cached_property
    def tags(self) -> frozenset[Tag]:
        """Every tag a CPython of this version on this platform accepts."""
        return frozenset(
            [
                *cpython_tags(self.python, platforms=self.platforms),
                *compatible_tags(self.python, f"cp{self.python[0]}{self.python[1]}", self.platforms),
            ]
        )


def host_arch() -> str:
    return platform.machine().lower().replace("arm64", "aarch64").replace("amd64", "x86_64")


def target(name: str | None = None, python: str | None = None) -> Target:
    """The target named by `--platform` and `--python`; by default this machine's own."""
    name = name or f"linux_{host_arch()}"
    if not sys.platform.startswith("linux") and name == f"linux_{host_arch()}":
        raise PlatformError(f"this machine is {sys.platform}; name the docks' platform with --platform")
    arch = name.removeprefix("linux_")
    if not name.startswith("linux_") or arch not in ARCHS:
        raise PlatformError(f"--platform {name}: use one of {', '.join('linux_' + a for a in ARCHS)}")
    text = python or f"{sys.version_info[0]}.{sys.version_info[1]}"
    parts = text.split(".")
    if len(parts) != 2 or not all(p.isdigit() for p in parts) or (int(parts[0]), int(parts[1])) < (3, 11):
        raise PlatformError(
            f"--python {text}: a CPython version such as 3.11 (the agent needs 3.11 or later)"
        )
    return Target(arch, (int(parts[0]), int(parts[1])))


def wheel_tags(name: str) -> frozenset[Tag]:
    try:
        return parse_wheel_filename(name)[3]
    except InvalidWheelFilename as exc:
        raise PlatformError(f"{name} is not a wheel's file name: {exc}") from None


def first_misfit(names: Iterable[str], accepted: Iterable[Tag] | None = None) -> str | None:
    """The first wheel none of whose tags is `accepted` (default: this interpreter's); None when
    every one fits."""
    ok = frozenset(accepted) if accepted is not None else frozenset(sys_tags())
    for name in names:
        if not wheel_tags(name) & ok:
            return name
    return None


def describe_host() -> str:
    """This interpreter as the misfit message names it: `CPython 3.11 on linux_x86_64 (glibc 2.36)`."""
    libc, version = platform.libc_ver()
    where = f"{sys.platform}_{host_arch()}" if sys.platform.startswith("linux") else sys.platform
    return f"{platform.python_implementation()} {sys.version_info[0]}.{sys.version_info[1]} on {where}" + (
        f" ({libc} {version})" if libc else ""
    )
