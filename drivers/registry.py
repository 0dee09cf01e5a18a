"""The drivers' registries name each driver as `module:Class`; the module is imported when a
device that uses it is configured, not when the registry is."""

from __future__ import annotations

import importlib
from typing import Any


def load(spec: str) -> type[Any]:
    module, name = spec.split(":")
    cls: type[Any] = getattr(importlib.import_module(module), name)
    return cls
