"""The releases folder: one virtual environment per version, a `current` link, and a small state
file; blocking file-system work for the launcher (it calls these in a thread).

    releases_dir/
        0.1.0/            a release (bin/edge-agent, ...), or a link to the launcher's own
                          environment when that lives elsewhere (the first release)
        0.2.0/            installed from a bundle; `.installed` is written last, so a folder
                          without it is a half-done installation and is removed
        current -> 0.2.0  switched by renaming a new link over it (atomic on POSIX)
        state.json        previous, failed versions, the release on trial, each release's schema,
                          the last `software` state; replaced atomically too
        .downloads/       bundles being fetched (`*.part`) and verified
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from edge_agent.update.bundle import BundleError

DISTRIBUTION = "dock-edge-agent"
MARKER = ".installed"


@dataclass
class State:
    previous: str | None = None
    failed: list[str] = field(default_factory=list)
    trial: dict[str, Any] | None = None
    """{"version", "from", "reason"} while a release has not yet proven itself healthy."""
    schemas: dict[str, int] = field(default_factory=dict)
    """The storage schema of each release that has run (it says so when it starts)."""
    software: dict[str, Any] = field(default_factory=dict)


def _sync_dir(path: Path) -> None:
    """A rename or a new name in `path` survives a power cut only once the folder is fsynced."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_synced(path: Path, text: str) -> None:
    with path.open("w", encoding="utf-8") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())


def fsync_tree(root: Path) -> int:
    """fsync every file and folder under `root` (links are not followed); returns how many."""
    count = 0
    for folder, dirs, files in os.walk(root):
        for name in files:
            path = os.path.join(folder, name)
            if os.path.islink(path):
                continue
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
            count += 1
        _sync_dir(Path(folder))
        count += 1
        dirs[:] = [d for d in dirs if not os.path.islink(os.path.join(folder, d))]
    return count


class Releases:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.link = root / "current"
        self.state_file = root / "state.json"
        self.downloads = root / ".downloads"

    # --- state -------------------------------------------------------------------------------
    def load(self) -> State:
        try:
            data = json.loads(self.state_file.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return State()
        if not isinstance(data, dict):
            return State()
        known = State.__dataclass_fields__
        return State(**{k: v for k, v in data.items() if k in known})

    def save(self, state: State) -> None:
        tmp = self.state_file.with_name(".state.json.tmp")
        with tmp.open("w", encoding="utf-8") as fh:
            json.dump(asdict(state), fh, indent=1, sort_keys=True)
            fh.flush()
            os.fsync(fh.fileno())
        tmp.replace(self.state_file)
        self._sync_dir()

    def _sync_dir(self) -> None:
        _sync_dir(self.root)

    # --- releases ----------------------------------------------------------------------------
    def current(self) -> str | None:
        try:
            return os.readlink(self.link).rstrip("/").rsplit("/", 1)[-1]
        except OSError:
            return None

    def path(self, version: str) -> Path:
        return self.root / version

    def executable(self, version: str) -> Path:
        return self.path(version) / "bin" / "edge-agent"

    def installed(self, version: str) -> bool:
        path = self.path(version)
        return self.executable(version).exists() and (path.is_symlink() or (path / MARKER).exists())

    def versions(self) -> list[str]:
        return sorted(
            p.name
            for p in self.root.iterdir()
            if not p.name.startswith(".") and p.name not in ("current", "state.json")
        )

    def ensure_initial(self, own_prefix: Path, own_version: str) -> str:
        """The releases folder, with a `current` release: the one the launcher belongs to when
        there is none yet. Returns the current version."""
        self.root.mkdir(parents=True, exist_ok=True)
        self.downloads.mkdir(exist_ok=True)
        current = self.current()
        if current is not None and self.installed(current):
            return current
        own = own_prefix.resolve()
        if own.parent == self.root.resolve():
            version = own.name
        else:
            version = own_version
            target = self.path(version)
            if not target.exists() and not target.is_symlink():
                target.symlink_to(own, target_is_directory=True)
        self.switch(version)
        return version

    def switch(self, version: str) -> None:
        """Point `current` at `version` atomically: a new link renamed over the old one."""
        tmp = self.root / ".current.tmp"
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        tmp.symlink_to(version, target_is_directory=True)
        tmp.replace(self.link)
        self._sync_dir()

    def install(self, version: str, wheels: Path, timeout_s: float = 900.0) -> None:
        """A new virtual environment with the agent at `version` from the bundle's wheels and
        nothing else: no package index is asked."""
        target = self.path(version)
        self.remove(version)
        python = Path(sys.executable)
        try:
            _run([str(python), "-m", "venv", "--without-pip", str(target)], timeout_s, "venv")
            _run([str(python), "-m", "pip", "--python", str(target / "bin" / "python"), "install",
                  "--no-index", "--find-links", str(wheels), "--no-cache-dir", "--disable-pip-version-check",
                  "--quiet", f"{DISTRIBUTION}=={version}"], timeout_s, "pip install")  # fmt: skip
            if not self.executable(version).exists():
                raise BundleError(
                    "install_failed", f"release {version} has no bin/edge-agent after installing"
                )
            # pip fsyncs nothing: after a power cut its files would be there but empty, and the
            # marker and `current` pointing at them. Everything is on the card before the marker is.
            fsync_tree(target)
            _write_synced(target / MARKER, version + "\n")
            _sync_dir(target)
        except BaseException:
            self.remove(version)
            raise

    def remove(self, version: str) -> None:
        path = self.path(version)
        if path.is_symlink():
            path.unlink()
        elif path.exists():
            shutil.rmtree(path, ignore_errors=True)

    def prune(self, keep: set[str], limit: int) -> list[str]:
        """Remove installed releases beyond the `limit` newest, never one in `keep`; also half-done
        installations. Returns what was removed."""
        removed = []
        candidates = []
        for version in self.versions():
            path = self.path(version)
            if version in keep or path.is_symlink():
                continue
            if not (path / MARKER).exists():
                self.remove(version)
                removed.append(version)
                continue
            candidates.append((path.stat().st_mtime, version))
        candidates.sort(reverse=True)
        for _, version in candidates[max(0, limit - len(keep)) :]:
            self.remove(version)
            removed.append(version)
        return removed


def _run(argv: list[str], timeout_s: float, what: str) -> None:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout_s, check=False)
    except subprocess.TimeoutExpired:
        raise BundleError("install_failed", f"{what} did not finish within {timeout_s:g} s") from None
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-5:]
        raise BundleError("install_failed", f"{what} failed ({done.returncode}): {' | '.join(tail)}")
