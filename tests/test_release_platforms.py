"""Releases for the docks' platform: which wheels fit which machine (pure, `packaging.tags`), a
device's refusal of a bundle that does not fit it (read from a real tar), and bundles really
built by `edge-fleet release build` for linux_aarch64 and linux_x86_64 from the package index
(marked `index`: CI has one)."""

from __future__ import annotations

import io
import json
import re
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
from packaging.utils import parse_wheel_filename

from edge_agent.update.bundle import BundleError
from edge_agent.update.contents import check_fit
from edge_agent.update.platforms import PlatformError, Target, first_misfit, host_arch, target
from tests.conftest import ROOT
from tests.release_kit import IGNORE, Kit

AARCH64 = Target("aarch64", (3, 11))
X86_64 = Target("x86_64", (3, 11))
HOST = f"linux_{host_arch()}"
OTHER = "linux_aarch64" if HOST == "linux_x86_64" else "linux_x86_64"
COMPILED = ("pydantic_core", "cryptography", "pillow", "zxing_cpp", "pypdfium2", "cffi", "pyyaml")


def edge_fleet(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "edge_agent.fleetctl", *args], capture_output=True, text=True,
                          cwd=cwd, timeout=600)  # fmt: skip


# --- which wheels fit ---------------------------------------------------------------------------
def test_the_targets_platforms_run_from_its_glibc_down_to_manylinux2014() -> None:
    assert AARCH64.platforms[0] == "linux_aarch64"
    assert "manylinux_2_36_aarch64" in AARCH64.platforms and "manylinux_2_37_aarch64" not in AARCH64.platforms
    assert {"manylinux_2_17_aarch64", "manylinux2014_aarch64"} <= set(AARCH64.platforms)
    assert "manylinux_2_16_aarch64" not in AARCH64.platforms  # aarch64 manylinux starts at 2.17
    assert all(p.endswith("_aarch64") for p in AARCH64.platforms)
    assert {"manylinux1_x86_64", "manylinux2010_x86_64", "manylinux_2_5_x86_64"} <= set(X86_64.platforms)


@pytest.mark.parametrize(
    ("wheel", "aarch64", "x86_64"),
    [
        ("pydantic_core-2.50.5-cp311-cp311-manylinux2014_aarch64.manylinux_2_17_aarch64.whl", True, False),
        ("cryptography-50.0.2-cp311-abi3-manylinux_2_34_aarch64.whl", True, False),
        ("cryptography-50.0.2-cp37-abi3-manylinux_2_28_x86_64.whl", False, True),  # abi3: any later CPython
        ("pillow-13.0.0-cp311-cp311-manylinux_2_27_aarch64.manylinux_2_28_aarch64.whl", True, False),
        ("evdev-1.9.2-cp311-cp311-linux_aarch64.whl", True, False),  # built on a Pi by pip wheel
        ("pypdfium2-5.15.2-py3-none-manylinux_2_17_aarch64.manylinux2014_aarch64.whl", True, False),
        ("biip-5.2.0-py3-none-any.whl", True, True),
        ("six-1.17.0-py2.py3-none-any.whl", True, True),
        ("pydantic_core-2.50.5-cp312-cp312-manylinux_2_17_aarch64.whl", False, False),  # another Python
        (
            "zxing_cpp-3.1.1-cp311-cp311-manylinux_2_39_aarch64.whl",
            False,
            False,
        ),  # newer glibc than bookworm's
        ("pillow-13.0.0-cp311-cp311-musllinux_1_2_aarch64.whl", False, False),  # Alpine's libc
        ("pillow-13.0.0-cp311-cp311-win_amd64.whl", False, False),
    ],
)
def test_a_wheel_fits_a_target_by_its_tags(wheel: str, aarch64: bool, x86_64: bool) -> None:
    assert (first_misfit([wheel], AARCH64.tags) is None) is aarch64
    assert (first_misfit([wheel], X86_64.tags) is None) is x86_64


def test_the_first_misfit_is_named_and_the_default_is_this_interpreter() -> None:
    mine = f"x-1.0-cp{sys.version_info[0]}{sys.version_info[1]}-abi3-manylinux_2_17_{host_arch()}.whl"
    other = f"y-1.0-cp311-cp311-manylinux_2_17_{OTHER.removeprefix('linux_')}.whl"
    assert first_misfit(["a-1.0-py3-none-any.whl", mine]) is None
    assert first_misfit(["a-1.0-py3-none-any.whl", other, "z-2-cp311-cp311-win32.whl"]) == other
    with pytest.raises(PlatformError, match=re.escape("not-a-wheel.zip is not a wheel's file name")):
        first_misfit(["not-a-wheel.zip"])


def test_target_names_and_pythons_are_checked() -> None:
    assert target().name == HOST
    assert target("linux_aarch64", "3.12") == Target("aarch64", (3, 12))
    with pytest.raises(
        PlatformError, match="--platform linux_armv7l: use one of linux_aarch64, linux_x86_64"
    ):
        target("linux_armv7l")
    with pytest.raises(PlatformError, match=re.escape("--python 3.9: a CPython version such as 3.11")):
        target("linux_aarch64", "3.9")
    with pytest.raises(PlatformError, match="--python eleven"):
        target("linux_aarch64", "eleven")


# --- the device's check, on a real tar ----------------------------------------------------------
def _tar(path: Path, names: list[str], manifest: dict[str, object] | None = None) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        members = [("release.json", json.dumps(manifest).encode())] if manifest is not None else []
        for name, body in [*members, *[(n, b"PK\x05\x06" + b"\0" * 18) for n in names]]:
            info = tarfile.TarInfo(name)
            info.size = len(body)
            tar.addfile(info, io.BytesIO(body))
    return path


def test_a_device_refuses_a_bundle_for_another_platform_naming_the_first_wheel(tmp_path: Path) -> None:
    arch = OTHER.removeprefix("linux_")
    bad = f"cffi-2.1.1-cp311-cp311-manylinux2014_{arch}.manylinux_2_17_{arch}.whl"
    bundle = _tar(tmp_path / "b.tar.gz", ["annotated_types-0.8.0-py3-none-any.whl", bad,
                                          f"pillow-13.0.0-cp311-cp311-manylinux_2_28_{arch}.whl"],
                  {"platform": OTHER, "python": "3.11"})  # fmt: skip
    with pytest.raises(BundleError) as caught:
        check_fit(bundle)
    assert caught.value.code == "bad_platform"
    assert caught.value.message.startswith(f"{bad} does not fit this device (CPython ")
    assert f"the bundle was built for {OTHER} / Python 3.11" in caught.value.message


def test_a_device_takes_a_bundle_that_fits_and_names_a_bad_wheel_name(tmp_path: Path) -> None:
    check_fit(_tar(tmp_path / "ok.tar", ["biip-5.2.0-py3-none-any.whl"]))
    with pytest.raises(BundleError, match=re.escape("broken.whl is not a wheel's file name")) as caught:
        check_fit(_tar(tmp_path / "bad.tar", ["broken.whl"]))
    assert caught.value.code == "bad_bundle"
    (tmp_path / "junk.tar").write_bytes(b"\x1f\x8b garbage")
    with pytest.raises(BundleError, match="not a readable tar file"):
        check_fit(tmp_path / "junk.tar")


# --- real builds from the package index -----------------------------------------------------------
@pytest.fixture(scope="module")
def kit(tmp_path_factory: pytest.TempPathFactory) -> Kit:
    return Kit(tmp_path_factory.mktemp("platform-kit"))


def _wheels(bundle: Path) -> tuple[dict[str, object], list[str]]:
    with tarfile.open(bundle) as tar:
        names = tar.getnames()
        member = tar.extractfile("release.json")
        assert member is not None
        return json.loads(member.read()), [n for n in names if n.endswith(".whl")]


@pytest.mark.index
@pytest.mark.parametrize("platform_name", ["linux_aarch64", "linux_x86_64"])
def test_a_bundle_for_each_platform_builds_from_the_index(platform_name: str, kit: Kit) -> None:
    built = kit.bundle("0.4.0", platform=platform_name)
    assert built["platform"] == platform_name and built["python"] == "3.11"
    bundle = Path(built["bundle"])
    manifest, wheels = _wheels(bundle)
    assert manifest["platform"] == platform_name and manifest["python"] == "3.11"
    assert sorted(manifest["wheels"]) == sorted(wheels)  # type: ignore[arg-type]
    arch = platform_name.removeprefix("linux_")
    for wheel in wheels:
        tags = parse_wheel_filename(wheel)[3]
        assert all(t.platform == "any" or t.platform.endswith(f"_{arch}") for t in tags), wheel
        assert all(t.interpreter in ("py3", "py2", "cp311") or t.abi == "abi3" for t in tags), wheel
    names = {parse_wheel_filename(w)[0] for w in wheels}
    assert {n.replace("-", "_") for n in names} >= {"dock_edge_agent", *COMPILED}
    assert "evdev" not in names  # the HID driver makes its ioctls itself
    assert all(parse_wheel_filename(w)[3] & Target(arch, (3, 11)).tags for w in wheels)
    out = edge_fleet("release", "inspect", str(bundle), "--public-key", kit.public_key, "--json")
    assert out.returncode == 0, out.stderr
    info = json.loads(out.stdout)
    assert (info["version"], info["platform"], info["python"]) == ("0.4.0", platform_name, "3.11")
    assert info["sha256"] == built["sha256"] and info["bytes"] == bundle.stat().st_size
    assert info["signature"]["valid"] is True and info["signature"]["key"] == kit.public_key
    assert info["signature"]["key_source"] == "given"
    assert sorted(w["name"] for w in info["wheels"]) == sorted(wheels)
    assert info["fits_this_machine"] is (platform_name == HOST)
    print(json.dumps({"platform": platform_name, "bytes": info["bytes"], "wheels": len(wheels)}))


@pytest.mark.index
def test_inspect_says_which_key_and_when_none_verifies(kit: Kit, tmp_path: Path) -> None:
    built = kit.bundle("0.4.0", platform="linux_aarch64")
    config = tmp_path / "agent.yaml"
    config.write_text(f"device: {{id: d1, site: s1}}\nmqtt: {{host: 127.0.0.1}}\nstorage: {{path: {tmp_path}}}\n"
                      f"update: {{public_keys: ['{'0' * 64}', '{kit.public_key}']}}\n")  # fmt: skip
    info = json.loads(edge_fleet("release", "inspect", built["bundle"], "-c", str(config), "--json").stdout)
    assert info["signature"]["valid"] and info["signature"]["key"] == kit.public_key
    assert info["signature"]["key_source"] == f"{config} update.public_keys"
    assert info["signature"]["keys_checked"] == 2
    stranger = edge_fleet("release", "inspect", built["bundle"], "--public-key", "11" * 32, "--json")
    assert json.loads(stranger.stdout)["signature"] == {
        "value": built["signature"], "valid": False, "key": None, "key_source": None, "keys_checked": 1,
        "why": "the signature is not that of any key checked",
    }  # fmt: skip
    text = edge_fleet("release", "inspect", built["bundle"]).stdout  # BUNDLE.sig's own key, said so
    assert "signature  valid, key " in text and "trust it only if you know that key" in text
    assert "platform   linux_aarch64 / Python 3.11" in text


@pytest.mark.index
def test_a_dependency_without_a_wheel_is_named_unless_wheels_from_has_one(kit: Kit, tmp_path: Path) -> None:
    """evdev publishes no wheels: a checkout that still needed it could not be bundled from the
    index; a wheel of it built on a machine of the platform (here this one) makes the build whole."""
    source = tmp_path / "src"
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(*IGNORE))
    pyproject = source / "pyproject.toml"
    pyproject.write_text(
        pyproject.read_text().replace('  "packaging>=23",\n', '  "packaging>=23",\n  "evdev>=1.7",\n')
    )
    args = [
        "release",
        "build",
        "--version",
        "0.5.0",
        "--key",
        str(kit.key),
        "--source",
        str(source),
        "--python",
        "3.11",
    ]
    out = edge_fleet(*args, "-o", str(tmp_path / "a.tar.gz"), "--platform", "linux_aarch64")
    assert out.returncode == 1
    assert out.stderr.startswith(
        "edge-fleet: missing_wheel: evdev has no wheel for linux_aarch64 / CPython 3.11"
    )
    assert "edge-fleet release wheel evdev" in out.stderr and "--wheels-from DIR" in out.stderr
    assert not (tmp_path / "a.tar.gz").exists()
    own = tmp_path / "wheels-here"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--wheel-dir", str(own), "evdev"],
                   check=True, capture_output=True)  # fmt: skip
    out = edge_fleet(
        *args, "-o", str(tmp_path / "h.tar.gz"), "--platform", HOST, "--wheels-from", str(own), "--json"
    )
    assert out.returncode == 0, out.stderr
    _, wheels = _wheels(tmp_path / "h.tar.gz")
    assert [w for w in wheels if w.startswith("evdev-")] == [p.name for p in own.glob("*.whl")]


def test_release_wheel_prints_what_to_run_on_a_dock() -> None:
    out = edge_fleet("release", "wheel", "evdev==1.9.2")
    assert out.returncode == 0
    assert "pip wheel --no-deps --wheel-dir wheels-linux_aarch64 'evdev==1.9.2'" in out.stdout
    assert "--platform linux_aarch64 --python 3.11 --wheels-from wheels-linux_aarch64" in out.stdout
