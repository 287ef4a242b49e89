"""The Arm emulator's root file system: an arm64 Python with numpy and LiteRT, built without emulation.

Set-up runs nothing under emulation (a debootstrap's second stage under qemu took ~20 min): apt
downloads the arm64 ``.deb`` files Python 3.11 needs into a private apt state (the system's
architectures and package lists are untouched, so no root is needed), ``dpkg-deb -x`` unpacks them,
and pip downloads the aarch64 wheels, which are unzipped into ``dist-packages``. Per emulated CPU
there is a small *view* of the tree (symlinks to it) with that CPU's fake ``/proc/cpuinfo`` and
``/sys/devices/system/cpu/{possible,present,online}``: XNNPACK's cpuinfo reads them, and with the
host's x86 files visible it crashes or silently runs without XNNPACK.

Layout under :func:`emulator_dir` (``~/.cache/edgekd/emulator/arm64`` or ``$EDGEKD_EMULATOR_DIR``)::

    sysroot/stamp.json             recipe key, resolved package versions, build time
    sysroot/base/                  the unpacked arm64 tree
    sysroot/cpu/<qemu-cpu>/        what ``qemu-aarch64-static -L`` gets for that CPU

The whole ``sysroot`` is built in a temporary folder beside it and renamed into place, so a failed
or interrupted set-up leaves the previous one intact; a stamp with the current recipe key makes a
re-run instant.

Example:
    >>> result = setup()  # doctest: +SKIP
    >>> sysroot_for("cortex-a76")  # doctest: +SKIP
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from edgekd.core.atomic import atomic_replace_dir, atomic_write_text
from edgekd.core.errors import RunnerError, ToolchainError
from edgekd.core.progress import NULL_PROGRESS, ProgressReporter

logger = logging.getLogger(__name__)

ENV_DIR = "EDGEKD_EMULATOR_DIR"
QEMU = "qemu-aarch64-static"
PYTHON = "usr/bin/python3.11"
SITE_PACKAGES = "usr/lib/python3/dist-packages"
# Seen by the guest at /edgekd-emulator.json: bench_script reports the run as emulated, whichever runner started it
# (the qemu runner, or an ssh "board" whose python3 is this emulator). No real board has this file.
MARKER = "edgekd-emulator.json"

# The recipe. Every entry feeds the stamp key: change one and the next set-up rebuilds.
RECIPE_VERSION = 2  # 2: each CPU view carries the emulator marker (MARKER)
DEB_PACKAGES = ("python3.11-minimal", "libpython3.11-stdlib", "libstdc++6", "libgcc-s1")
WHEELS = (  # ai-edge-litert and its dependencies, pinned (installed with --no-deps)
    "numpy==2.4.6",
    "ai-edge-litert==2.3.0",
    "backports.strenum==1.2.8",
    "flatbuffers==25.12.19",
    "ml-dtypes==0.6.0",
    "protobuf==7.36.2",
    "tqdm==4.70.1",
    "typing-extensions==4.16.0",
)
WHEEL_PLATFORMS = ("manylinux2014_aarch64", *(f"manylinux_2_{minor}_aarch64" for minor in range(17, 37)))
FAKE_CORES = 4


@dataclass(frozen=True)
class CpuIdentity:
    """What a real core of this kind shows in ``/proc/cpuinfo`` (MIDR fields and feature flags)."""

    part: str
    variant: str
    revision: int
    features: str


_V82 = "fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid asimdrdm lrcpc dcpop asimddp"
# qemu -cpu names with the Arm MIDR values from each core's Technical Reference Manual. Never ``max``:
# it advertises SVE2/SME/i8mm and XNNPACK's int8 kernels then return wrong results without an error.
CPUS: dict[str, CpuIdentity] = {
    "cortex-a76": CpuIdentity("0xd0b", "0x4", 1, _V82),  # Raspberry Pi 5 (BCM2712) reports r4p1
    "neoverse-n1": CpuIdentity("0xd0c", "0x3", 1, _V82 + " ssbs"),
    "cortex-a72": CpuIdentity("0xd08", "0x0", 3, "fp asimd evtstrm aes pmull sha1 sha2 crc32 cpuid"),
    "cortex-a53": CpuIdentity("0xd03", "0x0", 4, "fp asimd evtstrm aes pmull sha1 sha2 crc32 cpuid"),
}


def emulator_dir() -> Path:
    """Where the emulator lives: ``$EDGEKD_EMULATOR_DIR`` or ``~/.cache/edgekd/emulator/arm64``."""
    override = os.environ.get(ENV_DIR)
    return Path(override).expanduser() if override else Path.home() / ".cache" / "edgekd" / "emulator" / "arm64"


def recipe() -> dict:
    """Everything that decides the sysroot's content (the stamp key is its hash)."""
    return {
        "version": RECIPE_VERSION,
        "debs": list(DEB_PACKAGES),
        "wheels": list(WHEELS),
        "platforms": list(WHEEL_PLATFORMS),
        "cpus": {name: vars(cpu) for name, cpu in sorted(CPUS.items())},
        "cores": FAKE_CORES,
    }


def recipe_key() -> str:
    """Short hash of :func:`recipe`."""
    return hashlib.sha256(json.dumps(recipe(), sort_keys=True).encode()).hexdigest()[:16]


def cpuinfo_text(cpu: str, cores: int = FAKE_CORES) -> str:
    """A ``/proc/cpuinfo`` as an arm64 Linux kernel writes it for ``cores`` cores of kind ``cpu``."""
    ident = CPUS[check_cpu(cpu)]
    block = (
        "processor\t: {n}\nBogoMIPS\t: 108.00\nFeatures\t: {f}\nCPU implementer\t: 0x41\n"
        "CPU architecture: 8\nCPU variant\t: {v}\nCPU part\t: {p}\nCPU revision\t: {r}\n\n"
    )
    return "".join(
        block.format(n=n, f=ident.features, v=ident.variant, p=ident.part, r=ident.revision) for n in range(cores)
    )


def check_cpu(cpu: str) -> str:
    """``cpu`` if the emulator has a view for it, else RunnerError saying which it has."""
    if cpu == "max":
        raise RunnerError("qemu cpu 'max' makes XNNPACK's int8 kernels return wrong results; use cortex-a76")
    if cpu not in CPUS:
        raise RunnerError(f"no Arm emulator view for qemu cpu '{cpu}'; known: {', '.join(sorted(CPUS))}")
    return cpu


@dataclass(frozen=True)
class EmulatorStatus:
    """Whether the emulator is ready, where, and why not."""

    ready: bool
    path: Path
    key: str
    reason: str
    stamp: dict | None = None


def status(root: Path | None = None) -> EmulatorStatus:
    """Read the stamp; ready only if it carries the current recipe key."""
    sysroot = (root or emulator_dir()) / "sysroot"
    key = recipe_key()
    stamp_file = sysroot / "stamp.json"
    try:
        stamp = json.loads(stamp_file.read_text())
    except FileNotFoundError:
        return EmulatorStatus(False, sysroot, key, "not set up")
    except (OSError, ValueError) as exc:
        return EmulatorStatus(False, sysroot, key, f"unreadable stamp ({exc.__class__.__name__})")
    if not isinstance(stamp, dict) or stamp.get("key") != key:
        return EmulatorStatus(
            False, sysroot, key, "built from an older recipe", stamp if isinstance(stamp, dict) else None
        )
    if not (sysroot / "base" / PYTHON).is_file():
        return EmulatorStatus(False, sysroot, key, "stamp present but the arm64 python is missing", stamp)
    return EmulatorStatus(True, sysroot, key, "ready", stamp)


def sysroot_for(cpu: str, root: Path | None = None) -> Path:
    """The ``-L`` folder for ``cpu``; RunnerError if the emulator is not set up."""
    check_cpu(cpu)
    state = status(root)
    if not state.ready:
        raise RunnerError(f"Arm emulator not set up ({state.reason} in {state.path}); run `edgekd emulator setup`")
    return state.path / "cpu" / cpu


@dataclass(frozen=True)
class SetupResult:
    """What :func:`setup` did."""

    path: Path
    built: bool
    seconds: float
    stamp: dict


def setup(force: bool = False, root: Path | None = None, progress: ProgressReporter = NULL_PROGRESS) -> SetupResult:
    """Build the sysroot unless one with the current recipe exists (or ``force``).

    Raises:
        ToolchainError: a needed tool is missing, a download fails, or the result does not run.
    """
    started = time.perf_counter()
    root = root or emulator_dir()
    tools = _check_tools()
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ToolchainError(f"cannot create {root} ({exc.strerror}); set {ENV_DIR} to a writable folder") from exc
    with _locked(root):
        state = status(root)
        if state.ready and not force:
            return SetupResult(state.path, False, time.perf_counter() - started, state.stamp or {})
        work = Path(tempfile.mkdtemp(prefix=".build-", dir=root))
        try:
            stamp = _build(work, tools, progress)
            atomic_replace_dir(work / "sysroot", root / "sysroot")
        finally:
            shutil.rmtree(work, ignore_errors=True)
    logger.info("Arm emulator ready in %s (%.0f s)", root / "sysroot", time.perf_counter() - started)
    return SetupResult(root / "sysroot", True, time.perf_counter() - started, stamp)


def _check_tools() -> dict[str, str]:
    needs = {
        "apt-get": "the set-up downloads arm64 packages with apt; it needs Debian or Ubuntu",
        "dpkg-deb": "the set-up unpacks arm64 packages with dpkg-deb; it needs Debian or Ubuntu",
        QEMU: "install Debian's qemu-user-static (as root: apt-get install qemu-user-static, or `make debian`)",
    }
    found = {}
    for tool, hint in needs.items():
        path = shutil.which(tool)
        if path is None:
            raise ToolchainError(f"{tool} not found; {hint}")
        found[tool] = path
    return found


@contextmanager
def _locked(root: Path) -> Iterator[None]:
    with (root / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # a second set-up waits, then finds the first one's result
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _build(work: Path, tools: dict[str, str], progress: ProgressReporter) -> dict:
    sysroot = work / "sysroot"
    base = sysroot / "base"
    base.mkdir(parents=True)
    with progress.task("arm64 packages: apt-get update and download") as task:
        debs = _download_debs(work / "apt", tools["apt-get"])
        task.advance()
    with progress.task("aarch64 wheels: pip download") as task:
        wheels = _download_wheels(work / "wheels")
        task.advance()
    with progress.task("unpacking", total=len(debs) + len(wheels)) as task:
        for deb in debs:
            _run([tools["dpkg-deb"], "-x", str(deb), str(base)], f"unpacking {deb.name}")
            task.advance()
        for wheel in wheels:
            unpack_wheel(wheel, base / SITE_PACKAGES)
            task.advance()
        relativize_symlinks(base)
    with progress.task("fake CPU views", total=len(CPUS)) as task:
        for cpu in CPUS:
            _write_cpu_view(sysroot / "cpu" / cpu, cpu)
            task.advance()
    with progress.task("checking the arm64 python under qemu") as task:
        facts = _smoke_test(sysroot / "cpu" / "cortex-a76", tools[QEMU])
        task.advance()
    stamp = {
        "key": recipe_key(),
        "recipe": recipe(),
        "debs": sorted(d.name for d in debs),
        "wheels": sorted(w.name for w in wheels),
        "check": facts,
        "built": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    atomic_write_text(sysroot / "stamp.json", json.dumps(stamp, indent=2) + "\n")
    return stamp


def _run(cmd: list[str], what: str, env: dict[str, str] | None = None, timeout: float = 600) -> str:
    logger.debug("running %s", " ".join(cmd))
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout, check=False)
    except subprocess.TimeoutExpired as exc:
        raise ToolchainError(f"{what} timed out after {timeout:g} s") from exc
    except OSError as exc:
        raise ToolchainError(f"{what}: cannot start {cmd[0]} ({exc.strerror})") from exc
    if proc.returncode != 0:
        logger.debug("%s stderr:\n%s", what, proc.stderr)
        lines = [ln.strip() for ln in (proc.stderr or proc.stdout).splitlines() if ln.strip()]
        errors = [ln for ln in lines if ln.startswith(("E:", "ERROR:"))]
        raise ToolchainError(f"{what} failed: {(errors or lines or [f'exit code {proc.returncode}'])[-1]}")
    return proc.stdout


def _download_debs(apt_dir: Path, apt_get: str) -> list[Path]:
    """Resolve and download the arm64 packages with a private apt state (empty dpkg status)."""
    for sub in ("state/lists/partial", "cache/archives/partial"):
        (apt_dir / sub).mkdir(parents=True, exist_ok=True)
    (apt_dir / "status").touch()
    conf = apt_dir / "apt.conf"
    conf.write_text(
        'APT::Architecture "arm64";\nAPT::Architectures { "arm64"; };\n'
        f'Dir::State "{apt_dir}/state";\nDir::State::status "{apt_dir}/status";\nDir::Cache "{apt_dir}/cache";\n'
        'APT::Install-Recommends "false";\nAPT::Install-Suggests "false";\n'
    )
    env = {**os.environ, "APT_CONFIG": str(conf), "DEBIAN_FRONTEND": "noninteractive", "LC_ALL": "C"}
    _run([apt_get, "update", "-q"], "apt-get update (arm64 package lists)", env)
    _run([apt_get, "install", "-y", "-q", "--download-only", *DEB_PACKAGES], "apt-get download of arm64 packages", env)
    debs = sorted((apt_dir / "cache" / "archives").glob("*.deb"))
    if not debs:
        raise ToolchainError("apt-get downloaded no arm64 packages; check the apt sources carry arm64")
    return debs


def _download_wheels(dest: Path) -> list[Path]:
    platforms = [arg for p in WHEEL_PLATFORMS for arg in ("--platform", p)]
    cmd = [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:", *platforms]
    cmd += ["--python-version", "3.11", "--implementation", "cp", "-d", str(dest), *WHEELS]
    _run(cmd, "pip download of the aarch64 wheels", {**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"})
    wheels = sorted(dest.glob("*.whl"))
    if len(wheels) != len(WHEELS):
        raise ToolchainError(f"pip downloaded {len(wheels)} wheels for {len(WHEELS)} requirements")
    return wheels


def unpack_wheel(wheel: Path, site: Path) -> None:
    """Install a wheel by unzipping it (``*.data/purelib|platlib`` land in ``site`` too)."""
    site.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(wheel) as zf:
        for info in zf.infolist():
            parts = Path(info.filename).parts
            if info.is_dir() or ".." in parts or Path(info.filename).is_absolute():
                continue
            if parts[0].endswith(".data"):
                if len(parts) < 3 or parts[1] not in ("purelib", "platlib"):
                    continue  # scripts, headers, data: nothing the runtime needs
                parts = parts[2:]
            target = site.joinpath(*parts)
            target.parent.mkdir(parents=True, exist_ok=True)
            with zf.open(info) as src, target.open("wb") as dst:
                shutil.copyfileobj(src, dst)


def relativize_symlinks(tree: Path) -> int:
    """Make absolute symlinks relative: the host resolves them, and ``/x`` would point outside ``tree``."""
    changed = 0
    for link in [p for p in tree.rglob("*") if p.is_symlink()]:
        target = os.readlink(link)
        if os.path.isabs(target):
            link.unlink()
            link.symlink_to(os.path.relpath(tree / target.lstrip("/"), link.parent))
            changed += 1
    return changed


def _write_cpu_view(view: Path, cpu: str) -> None:
    """Symlinks to the base tree plus this CPU's fake /proc and /sys files."""
    view.mkdir(parents=True)
    base = view.parent.parent / "base"
    for entry in sorted(base.iterdir()):
        if entry.name not in ("proc", "sys"):
            (view / entry.name).symlink_to(os.path.relpath(entry, view))
    (view / "proc").mkdir()
    (view / "proc" / "cpuinfo").write_text(cpuinfo_text(cpu))
    (view / MARKER).write_text(json.dumps({"emulator": "qemu-user", "cpu": cpu}) + "\n")
    cpus = view / "sys" / "devices" / "system" / "cpu"
    cpus.mkdir(parents=True)
    for name in ("possible", "present", "online"):
        (cpus / name).write_text(f"0-{FAKE_CORES - 1}\n")


_SMOKE = (
    "import json, platform, numpy; from importlib import metadata; from ai_edge_litert.interpreter import Interpreter;"
    "print(json.dumps({'machine': platform.machine(), 'python': platform.python_version(),"
    " 'numpy': numpy.__version__, 'litert': metadata.version('ai-edge-litert'),"
    " 'cpu_part': [l.split(':')[1].strip() for l in open('/proc/cpuinfo') if l.startswith('CPU part')][0]}))"
)


def _smoke_test(view: Path, qemu: str) -> dict:
    """Import numpy and LiteRT under emulation: proves the tree is complete before it is published."""
    cmd = [qemu, "-cpu", "cortex-a76", "-L", str(view), str(view / PYTHON), "-I", "-c", _SMOKE]
    out = _run(cmd, "the arm64 python check under qemu", guest_env(view), timeout=300)
    try:
        facts = json.loads(out.strip().splitlines()[-1])
    except (ValueError, IndexError) as exc:
        raise ToolchainError("the arm64 python check under qemu printed no result") from exc
    if facts.get("machine") != "aarch64" or facts.get("cpu_part") != CPUS["cortex-a76"].part:
        raise ToolchainError(f"the arm64 python check saw the wrong machine or cpuinfo: {facts}")
    return facts


def guest_env(home: Path) -> dict[str, str]:
    """A clean environment for qemu and the guest (no host PYTHON*, QEMU_* or LD_* variables leak in)."""
    return {"PATH": "/usr/bin:/bin", "HOME": str(home), "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8"}
