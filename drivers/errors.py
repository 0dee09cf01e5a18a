"""Errors raised at the device boundary."""

from __future__ import annotations


class DeviceError(Exception):
    """A scanner or printer failed: absent, unplugged, refused, or spoke garbage."""


class DeviceGone(DeviceError):
    """The device disappeared (unplugged, hung up); the caller may reopen it later."""
