"""Linux ioctl request numbers, encoded as <asm-generic/ioctl.h> does (`_IOC`), for the few
ioctls the drivers make through `fcntl.ioctl`: a number on one side, no C extension.

The layout is the generic one (x86-64, arm, aarch64: every Pi): 2 direction bits at 30, 14 size
bits at 16, the type character at 8, the number at 0. PowerPC, MIPS and SPARC lay it out
differently; the agent does not run on them.
"""

from __future__ import annotations

import struct

WRITE, READ = 1, 2  # _IOC_WRITE, _IOC_READ
INT_SIZE = struct.calcsize("i")


def ioc(direction: int, kind: str, number: int, size: int) -> int:
    if not 0 <= size < 1 << 14:
        raise ValueError(f"an ioctl argument of {size} bytes does not fit in 14 bits")
    return (direction << 30) | (size << 16) | (ord(kind) << 8) | number


# <linux/input.h>: the event device's interface version, its name, and the exclusive grab
EVIOCGVERSION = ioc(READ, "E", 0x01, INT_SIZE)
EVIOCGRAB = ioc(WRITE, "E", 0x90, INT_SIZE)


def eviocgname(length: int) -> int:
    return ioc(READ, "E", 0x06, length)
