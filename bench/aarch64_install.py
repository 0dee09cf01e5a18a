"""A release built here (x86-64) for linux_aarch64, installed offline on an emulated 64-bit ARM
Debian 12 (the base of Raspberry Pi OS 12: Python 3.11, glibc 2.36), and run there.

    python bench/aarch64_install.py [--root /var/tmp/edge-pi-root]

Needs root, Debian's debootstrap and qemu-user-static (binfmt_misc registers qemu-aarch64; the
script mounts binfmt_misc where a container has not). The root file system is made once with
`debootstrap --arch=arm64` (about 3 minutes) and kept. Then, with no network at all (`unshare
-n`): a virtual environment, `pip install --no-index` from the bundle's wheels, the compiled
wheels imported, `edge-agent decode` run, and the device's own check (`check_fit`) on the
aarch64 bundle (fits) and on an x86-64 one (`bad_platform`). Prints timings and sizes.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CHECK = """
import json, platform, sys
from pathlib import Path
import pydantic_core, PIL.Image, zxingcpp, pypdfium2, yaml
from cryptography.hazmat.primitives.asymmetric import ed25519
from edge_agent.update.bundle import BundleError
from edge_agent.update.contents import check_fit
out = {"machine": platform.machine(), "python": platform.python_version(), "libc": platform.libc_ver()}
for name in sys.argv[1:]:
    try:
        check_fit(Path(name))
        out[name] = "fits"
    except BundleError as exc:
        out[name] = exc.code + ": " + exc.message[:120]
print(json.dumps(out))
"""


def run(argv: list[str], **kw: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, check=True, **kw)  # type: ignore[call-overload, no-any-return]


def in_root(root: Path, script: str) -> str:
    """`script` under /bin/sh in the emulated root, with no network and a clean environment."""
    return run(["unshare", "-n", "chroot", str(root), "/usr/bin/env", "-i", "PATH=/usr/bin:/bin", "/bin/sh", "-c",
                script]).stdout  # fmt: skip


def ensure_root(root: Path) -> float:
    if (root / "usr/bin/python3").exists():
        return 0.0
    if not Path("/proc/sys/fs/binfmt_misc/qemu-aarch64").exists():
        subprocess.run(["mount", "-t", "binfmt_misc", "binfmt_misc", "/proc/sys/fs/binfmt_misc"], check=False)
        subprocess.run(["update-binfmts", "--enable", "qemu-aarch64"], check=False)
    t0 = time.monotonic()
    run(["debootstrap", "--arch=arm64", "--variant=minbase", "--include=python3,python3-venv", "bookworm",
         str(root), "http://deb.debian.org/debian"])  # fmt: skip
    return time.monotonic() - t0


def build(tmp: Path, key: Path, platform: str) -> dict[str, str]:
    out = run([sys.executable, "-m", "edge_agent.fleetctl", "release", "build", "--version", "0.9.0", "--key",
               str(key), "-o", str(tmp / f"{platform}.tar.gz"), "--platform", platform, "--python", "3.11",
               "--json"], cwd=ROOT)  # fmt: skip
    return json.loads(out.stdout)  # type: ignore[no-any-return]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--root", default="/var/tmp/edge-pi-root", help="the arm64 root file system (kept)")
    args = parser.parse_args()
    root = Path(args.root)
    report: dict[str, object] = {"debootstrap_s": round(ensure_root(root), 1)}
    with tempfile.TemporaryDirectory(prefix="edge-aarch64-") as tmp_name:
        tmp = Path(tmp_name)
        key = tmp / "release.pem"
        run([sys.executable, "-m", "edge_agent.fleetctl", "release", "keygen", "-o", str(key)], cwd=ROOT)
        t0 = time.monotonic()
        arm, x86 = build(tmp, key, "linux_aarch64"), build(tmp, key, "linux_x86_64")
        report["build_both_s"] = round(time.monotonic() - t0, 1)
        report["bundle_bytes"] = {p: Path(b["bundle"]).stat().st_size for p, b in (("linux_aarch64", arm),
                                                                                   ("linux_x86_64", x86))}  # fmt: skip
        opt = root / "opt/edge-check"
        shutil.rmtree(opt, ignore_errors=True)
        (opt / "wheels").mkdir(parents=True)
        shutil.copy(arm["bundle"], opt / "arm.tar.gz")
        shutil.copy(x86["bundle"], opt / "x86.tar.gz")
        run(["tar", "-xzf", str(opt / "arm.tar.gz"), "-C", str(opt / "wheels")])
        t0 = time.monotonic()
        in_root(root, "python3 -m venv /opt/edge-check/rel && /opt/edge-check/rel/bin/pip install -q --no-index "
                      "--find-links /opt/edge-check/wheels dock-edge-agent==0.9.0")  # fmt: skip
        report["offline_install_s"] = round(time.monotonic() - t0, 1)
        decoded = in_root(
            root, "echo ']C10109501101530003' | /opt/edge-check/rel/bin/edge-agent decode --json"
        )
        report["decode_on_aarch64"] = json.loads(decoded)["kind"]
        check = in_root(root, f"/opt/edge-check/rel/bin/python -c '{CHECK}' /opt/edge-check/arm.tar.gz "
                              "/opt/edge-check/x86.tar.gz")  # fmt: skip
        report["on_the_device"] = json.loads(check)
        shutil.rmtree(opt, ignore_errors=True)
    print(json.dumps(report, indent=1))
    ok = report["on_the_device"]
    assert isinstance(ok, dict)
    sys.exit(0 if ok["/opt/edge-check/arm.tar.gz"] == "fits" and ok["machine"] == "aarch64"
             and str(ok["/opt/edge-check/x86.tar.gz"]).startswith("bad_platform") else 1)  # fmt: skip


if __name__ == "__main__":
    if os.geteuid() != 0:
        raise SystemExit("bench/aarch64_install.py needs root (chroot, unshare -n, debootstrap)")
    main()
