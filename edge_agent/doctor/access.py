"""Who may open a device, and who holds it open now."""

from __future__ import annotations

import grp
import os
import pwd
import stat
from dataclasses import dataclass
from pathlib import Path

SERVICE_USER = "edge-agent"
SERVICE_GROUPS = ("input", "dialout", "lp")
"""SupplementaryGroups of systemd/edge-agent.service: the unit grants them whatever /etc/group says."""


@dataclass(frozen=True, slots=True)
class Who:
    name: str
    uid: int
    gids: frozenset[int]
    service: bool
    """True for the service's own user; False for whoever runs the doctor (no such user here)."""


def service_user() -> Who:
    try:
        entry = pwd.getpwnam(SERVICE_USER)
    except KeyError:
        uid = os.geteuid()
        name = pwd.getpwuid(uid).pw_name if uid >= 0 else str(uid)
        return Who(name, uid, frozenset([os.getegid(), *os.getgroups()]), service=False)
    gids = {entry.pw_gid}
    for group in grp.getgrall():
        if SERVICE_USER in group.gr_mem or group.gr_name in SERVICE_GROUPS:
            gids.add(group.gr_gid)
    return Who(SERVICE_USER, entry.pw_uid, frozenset(gids), service=True)


def may(who: Who, path: Path, read: bool = True, write: bool = False) -> bool:
    """Would `who` be allowed to open `path` so (the mode bits; root may always)?"""
    if who.uid == 0:
        return True
    try:
        st = path.stat()
    except OSError:
        return False
    if st.st_uid == who.uid:
        r, w = stat.S_IRUSR, stat.S_IWUSR
    elif st.st_gid in who.gids:
        r, w = stat.S_IRGRP, stat.S_IWGRP
    else:
        r, w = stat.S_IROTH, stat.S_IWOTH
    return (not read or bool(st.st_mode & r)) and (not write or bool(st.st_mode & w))


def group_of(path: Path) -> str:
    try:
        return grp.getgrgid(path.stat().st_gid).gr_name
    except (OSError, KeyError):
        return "?"


def holders(path: Path) -> list[int]:
    """Processes that have `path` open (those /proc lets us see), this one excepted."""
    try:
        target = path.resolve(strict=True)
    except OSError:
        return []
    found = []
    me = os.getpid()
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == me:
            continue
        try:
            for fd in (proc / "fd").iterdir():
                try:
                    if Path(os.readlink(fd)) == target:
                        found.append(int(proc.name))
                        break
                except OSError:
                    continue
        except OSError:
            continue
    return found


def command_of(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return "?"


def running_agents(config: Path) -> list[int]:
    """Agents running on this config file (`edge-agent run -c FILE`, or a launcher's child)."""
    want = str(config.resolve())
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            argv = (proc / "cmdline").read_bytes().split(b"\0")
            cwd = os.readlink(proc / "cwd")
        except OSError:
            continue
        args = [a.decode(errors="replace") for a in argv if a]
        if "run" not in args and "launch" not in args:
            continue
        if not any("edge_agent" in a or "edge-agent" in a for a in args):
            continue
        for i, arg in enumerate(args[:-1]):
            if arg in ("-c", "--config") and str((Path(cwd) / args[i + 1]).resolve()) == want:
                found.append(int(proc.name))
    return found
