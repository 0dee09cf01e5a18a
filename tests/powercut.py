"""Power cuts for the tests and bench/powercut.py: the agent's storage on LazyFS (tests/lazyfs/,
vendored; built by .ci/run), a FUSE file system that keeps every write not yet fsynced in its own
cache and drops it on command.

A cut is: freeze the agent (SIGSTOP, so nothing more reaches the disk), drop every unsynced byte
(LazyFS clear-cache), SIGKILL. What the agent had fsynced is on the root dir; all else is gone,
as after pulling the plug. LazyFS passes create, rename and unlink straight through (it does not
model a directory's own durability), and a file created but never fsynced comes back empty.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path

from tests.lazyfs.lazyfs_mount import LazyFS, is_mounted

BUILD = Path(os.environ.get("LAZYFS_PREFIX", Path.home() / ".cache" / "edge-agent" / "lazyfs"))
BINARY = BUILD / "bin" / "lazyfs"
SOURCES = Path(__file__).parent / "lazyfs"


def ensure_built() -> Path:
    """The LazyFS binary, built from tests/lazyfs/ if it is not there yet (a no-op when it is)."""
    if not BINARY.exists():
        subprocess.run(["bash", str(SOURCES / "build.sh"), str(BUILD)], check=True, capture_output=True)
    return BINARY


class Disk:
    """A LazyFS mount at `mount` over `root`: the agent's storage as an SD card that loses power."""

    def __init__(self, folder: Path, cache: str = "192mb") -> None:
        self.root = folder / "card"
        self.mount = folder / "mnt"
        # lazyfs takes a config path containing "-o" (any case) for an option and ignores it:
        # pytest's folders (/tmp/pytest-of-root/...) do, so its state lives elsewhere
        self._state = tempfile.mkdtemp(prefix="lfs_", dir="/tmp")
        assert "-o" not in self._state.lower()
        self.fs = LazyFS(str(self.root), str(self.mount), binary=str(ensure_built()), cache_size=cache,
                         state_dir=self._state)  # fmt: skip

    def __enter__(self) -> Disk:
        self.fs.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if is_mounted(str(self.mount)):
            self.fs.stop()
        shutil.rmtree(self._state, ignore_errors=True)

    def cut(self, pids: list[int]) -> None:
        """The power goes: the processes freeze, the unsynced bytes vanish, the processes die."""
        for pid in pids:
            os.kill(pid, signal.SIGSTOP)
        self.fs.clear_cache()
        for pid in pids:
            os.kill(pid, signal.SIGKILL)

    def drop(self) -> None:
        """The unsynced bytes vanish (no process running on the card)."""
        self.fs.clear_cache()
