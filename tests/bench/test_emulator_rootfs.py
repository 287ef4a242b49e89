"""The Arm emulator's set-up library: recipe and stamp, clear failures, atomic replacement, the real tree."""

from __future__ import annotations

import json
import shutil
import subprocess
import zipfile
from pathlib import Path

import pytest

from edgekd.bench import emulator_rootfs as er
from edgekd.core.errors import RunnerError, ToolchainError


def _fake_ready(root: Path) -> Path:
    """A sysroot that status() accepts: current stamp and an arm64 python file."""
    sysroot = root / "sysroot"
    python = sysroot / "base" / er.PYTHON
    python.parent.mkdir(parents=True)
    python.write_bytes(b"\x7fELF fake")
    (sysroot / "stamp.json").write_text(json.dumps({"key": er.recipe_key(), "built": "earlier"}))
    return sysroot


def test_emulator_dir_defaults_to_the_user_cache_and_honours_the_env(monkeypatch, tmp_path):
    monkeypatch.delenv(er.ENV_DIR, raising=False)
    assert er.emulator_dir() == Path.home() / ".cache" / "edgekd" / "emulator" / "arm64"
    monkeypatch.setenv(er.ENV_DIR, str(tmp_path / "emu"))
    assert er.emulator_dir() == tmp_path / "emu"


def test_recipe_key_follows_the_recipe(monkeypatch):
    key = er.recipe_key()
    assert key == er.recipe_key() and len(key) == 16
    monkeypatch.setattr(er, "WHEELS", (*er.WHEELS, "tqdm==0.0.1"))
    assert er.recipe_key() != key


def test_cpuinfo_looks_like_an_arm64_kernels():
    text = er.cpuinfo_text("cortex-a76", cores=4)
    blocks = [b for b in text.split("\n\n") if b.strip()]
    assert len(blocks) == 4
    assert all("CPU part\t: 0xd0b" in b and "CPU implementer\t: 0x41" in b and "asimddp" in b for b in blocks)
    assert "CPU part\t: 0xd03" in er.cpuinfo_text("cortex-a53")
    assert "asimddp" not in er.cpuinfo_text("cortex-a72")  # Armv8.0: no dot product


@pytest.mark.parametrize(("cpu", "words"), [("max", "wrong results"), ("cortex-x9", "known: cortex-a53")])
def test_unusable_cpus_are_refused(cpu, words):
    with pytest.raises(RunnerError, match=words):
        er.check_cpu(cpu)


def test_status_explains_why_it_is_not_ready(tmp_path, monkeypatch):
    assert er.status(tmp_path).reason == "not set up"
    sysroot = _fake_ready(tmp_path)
    assert er.status(tmp_path).ready
    monkeypatch.setattr(er, "RECIPE_VERSION", er.RECIPE_VERSION + 1)
    state = er.status(tmp_path)
    assert not state.ready and "older recipe" in state.reason
    (sysroot / "stamp.json").write_text("{not json")
    assert "unreadable" in er.status(tmp_path).reason


def test_sysroot_for_a_missing_emulator_says_to_set_it_up(tmp_path):
    with pytest.raises(RunnerError, match=r"Arm emulator not set up .*run `edgekd emulator setup`"):
        er.sysroot_for("cortex-a76", tmp_path)
    _fake_ready(tmp_path)
    assert er.sysroot_for("cortex-a72", tmp_path) == tmp_path / "sysroot" / "cpu" / "cortex-a72"


@pytest.mark.parametrize(("tool", "words"), [(er.QEMU, "qemu-user-static"), ("apt-get", "Debian or Ubuntu")])
def test_missing_tools_fail_with_one_line_saying_what_to_do(tmp_path, monkeypatch, tool, words):
    which = shutil.which
    monkeypatch.setattr(er.shutil, "which", lambda name: None if name == tool else which(name))
    with pytest.raises(ToolchainError, match=words) as info:
        er.setup(root=tmp_path / "emu")
    assert "\n" not in str(info.value)
    assert not (tmp_path / "emu").exists()


def test_unwritable_folder_names_the_env_variable(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(ToolchainError, match=er.ENV_DIR):
        er.setup(root=blocker / "emu")


def test_an_up_to_date_emulator_is_not_rebuilt(tmp_path, monkeypatch):
    _fake_ready(tmp_path)

    def no_build(*args, **kwargs):
        raise AssertionError("rebuilt an up-to-date emulator")

    monkeypatch.setattr(er, "_build", no_build)
    result = er.setup(root=tmp_path)
    assert not result.built and result.stamp["built"] == "earlier"


def test_failed_rebuild_keeps_the_previous_emulator_and_leaves_no_temp(tmp_path, monkeypatch):
    sysroot = _fake_ready(tmp_path)
    before = (sysroot / "stamp.json").read_text()

    def offline(apt_dir, apt_get):
        raise ToolchainError("apt-get update (arm64 package lists) failed: E: network unreachable")

    monkeypatch.setattr(er, "_download_debs", offline)
    with pytest.raises(ToolchainError, match="network unreachable"):
        er.setup(force=True, root=tmp_path)
    assert (sysroot / "stamp.json").read_text() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == [".lock", "sysroot"]


def test_successful_rebuild_replaces_the_tree_atomically(tmp_path, monkeypatch):
    _fake_ready(tmp_path)

    def build(work, tools, progress):
        new = work / "sysroot"
        (new / "base" / er.PYTHON).parent.mkdir(parents=True)
        (new / "base" / er.PYTHON).write_text("new")
        stamp = {"key": er.recipe_key(), "built": "now"}
        (new / "stamp.json").write_text(json.dumps(stamp))
        return stamp

    monkeypatch.setattr(er, "_build", build)
    result = er.setup(force=True, root=tmp_path)
    assert result.built and result.stamp["built"] == "now"
    assert (tmp_path / "sysroot" / "base" / er.PYTHON).read_text() == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == [".lock", "sysroot"]


def test_unpack_wheel_installs_purelib_and_skips_scripts(tmp_path):
    wheel = tmp_path / "demo-1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        zf.writestr("demo/__init__.py", "X = 1\n")
        zf.writestr("demo-1.0.dist-info/METADATA", "Name: demo\nVersion: 1.0\n")
        zf.writestr("demo-1.0.data/purelib/demo_extra.py", "Y = 2\n")
        zf.writestr("demo-1.0.data/scripts/demo", "#!/bin/sh\n")
    site = tmp_path / "site"
    er.unpack_wheel(wheel, site)
    assert (site / "demo" / "__init__.py").read_text() == "X = 1\n"
    assert (site / "demo_extra.py").read_text() == "Y = 2\n"
    assert (site / "demo-1.0.dist-info" / "METADATA").is_file()
    assert sorted(p.name for p in site.iterdir()) == ["demo", "demo-1.0.dist-info", "demo_extra.py"]


def test_absolute_symlinks_become_relative_inside_the_tree(tmp_path):
    tree = tmp_path / "tree"
    (tree / "etc" / "python3.11").mkdir(parents=True)
    (tree / "etc" / "python3.11" / "sitecustomize.py").write_text("# arm64 tree\n")
    (tree / "usr" / "lib").mkdir(parents=True)
    link = tree / "usr" / "lib" / "sitecustomize.py"
    link.symlink_to("/etc/python3.11/sitecustomize.py")
    (tree / "usr" / "lib" / "rel").symlink_to("sitecustomize.py")
    assert er.relativize_symlinks(tree) == 1
    assert not Path(link.readlink()).is_absolute()
    assert link.read_text() == "# arm64 tree\n"


# --- the real emulator (built by `make emulator`, i.e. `edgekd emulator setup`) ---


@pytest.mark.emulator
def test_setup_is_idempotent_on_the_real_emulator():
    state = er.status()
    assert state.ready, f"{state.reason}: run `edgekd emulator setup`"
    again = er.setup()
    assert not again.built
    assert again.stamp["key"] == er.recipe_key()
    assert again.stamp["check"]["machine"] == "aarch64"
    assert {w.split("-")[0] for w in again.stamp["wheels"]} >= {"numpy", "ai_edge_litert"}


@pytest.mark.emulator
@pytest.mark.parametrize("cpu", sorted(er.CPUS))
def test_each_cpu_view_shows_its_fake_cpuinfo_to_the_guest(cpu):
    view = er.sysroot_for(cpu)
    code = (
        "import platform; print(platform.machine());"
        "print(open('/sys/devices/system/cpu/possible').read().strip());"
        "print([l.split(':')[1].strip() for l in open('/proc/cpuinfo') if l.startswith('CPU part')])"
    )
    cmd = [er.QEMU, "-cpu", cpu, "-L", str(view), str(view / er.PYTHON), "-I", "-S", "-c", code]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=er.guest_env(view), timeout=300, check=True)
    machine, possible, parts = proc.stdout.strip().splitlines()
    assert machine == "aarch64"
    assert possible == f"0-{er.FAKE_CORES - 1}"
    assert parts == str([er.CPUS[cpu].part] * er.FAKE_CORES)
