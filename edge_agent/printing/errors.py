"""Why a print job is refused (a reason the central system is told in `event/print`)."""

from __future__ import annotations


class JobRejected(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
