"""Run untrusted Python (generated tests, generated solutions) in an OS-level sandbox.

The sandbox is a fresh temporary directory, new network, PID and mount namespaces made with util-linux
``unshare`` (no interface is brought up, so there is no network at all, not even loopback), resource limits set
before exec (CPU seconds, address space, processes, file size), a clean environment and a wall-clock timeout that
kills everything the run started. Inside the mount namespace a small Python bootstrap (the first process) makes
every mount private, bind-mounts the run's directory onto itself and remounts every other mount point read-only
(``/``, ``/tmp``, ``/dev/shm``, ``/proc``, ``/sys``, ...), checks that this took, then execs the command. So the run
can write only into its own directory (which is also its HOME and TMPDIR); writes anywhere else fail with EROFS.
When the namespaces or the read-only remount cannot be made, nothing runs: ``SandboxUnavailable`` is raised with
the probe's reason. Code is never executed unisolated.

What it does not isolate: reading. The code runs as the calling user (as root when doctune runs as root) and can
read whatever that user can read (other repositories, keys in home directories, and the host's ``/proc``, read-only:
no fresh ``/proc`` is mounted for the new PID namespace). Device nodes (``/dev/null``, ``/dev/tty``) stay
writable: a read-only mount does not cover them. Open file descriptors it inherits are not covered either (only
stdin=/dev/null, stdout and stderr are passed). There is no seccomp filter and no cgroup; RLIMIT_NPROC does not
bind root.
"""

from __future__ import annotations

import contextlib
import logging
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Literal

logger = logging.getLogger(__name__)

SandboxStatus = Literal["passed", "failed", "timeout", "error"]

FILE_SIZE_LIMIT_BYTES = 64 * 1024 * 1024
"""Largest file a sandboxed run may write (RLIMIT_FSIZE); also caps its captured stdout/stderr files."""

PROBE_TIMEOUT_S = 10.0
"""How long the isolation probe may take before it counts as unavailable."""

_probe_cache: tuple[bool, str] | None = None


class SandboxUnavailable(Exception):
    """OS-level isolation (network/PID/mount namespaces, read-only file system) cannot be made here, so doctune
    refuses to execute code."""


@dataclass
class SandboxLimits:
    """Resource limits of one sandboxed run."""

    timeout_s: float = 10
    """Wall-clock seconds before the whole run is killed (status "timeout")."""
    cpu_s: int = 10
    """CPU seconds (RLIMIT_CPU); the process gets SIGXCPU/SIGKILL past it."""
    memory_mb: int = 512
    """Address space in MiB (RLIMIT_AS); allocations past it fail with MemoryError."""
    max_processes: int = 64
    """RLIMIT_NPROC (per user; not enforced by the kernel for root)."""
    max_output_bytes: int = 64_000
    """stdout and stderr are each truncated to this many bytes."""


@dataclass
class SandboxResult:
    """What one sandboxed run did."""

    status: SandboxStatus
    """passed (exit 0), failed (non-zero exit, killed, or test failures), timeout, or error (bad input, pytest
    usage/internal error, no tests collected, launch failure)."""
    returncode: int | None
    """Exit status; negative for a signal; None when the run never started."""
    stdout: str
    stderr: str
    duration_s: float
    command: list[str]
    """The command that ran inside the namespaces (without the ``unshare`` prefix and the bootstrap)."""

    @property
    def ok(self) -> bool:
        """True when the run passed."""
        return self.status == "passed"

    def summary(self, max_chars: int = 300) -> str:
        """A short one-line account of the run: status, exit code and the tail of its output."""
        tail = (self.stdout + "\n" + self.stderr).strip().replace("\n", " | ")
        return f"{self.status} (rc={self.returncode}, {self.duration_s:.2f}s): {tail[-max_chars:]}"


BOOTSTRAP_EXIT = 125
"""Exit status of the bootstrap when it could not make the file system read-only (the command never ran)."""

_BOOTSTRAP_MARK = "doctune sandbox bootstrap:"

_BOOTSTRAP = r"""
import ctypes, errno, os, re, sys
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_REMOUNT, MS_BIND = 1, 2, 4, 8, 32, 4096
MS_NOATIME, MS_NODIRATIME, MS_REC, MS_PRIVATE, MS_RELATIME = 1024, 2048, 16384, 1 << 18, 1 << 21
KEEP = ((os.ST_NOSUID, MS_NOSUID), (os.ST_NODEV, MS_NODEV), (os.ST_NOEXEC, MS_NOEXEC),
        (os.ST_NOATIME, MS_NOATIME), (os.ST_NODIRATIME, MS_NODIRATIME), (os.ST_RELATIME, MS_RELATIME))
libc = ctypes.CDLL(None, use_errno=True)
libc.mount.argtypes = (ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_void_p)

def fail(what):
    sys.stderr.write("doctune sandbox bootstrap: " + what + "\n")
    sys.exit(125)  # BOOTSTRAP_EXIT

def mount(source, target, flags, what):
    if libc.mount(source.encode(), target.encode(), None, flags, None) != 0:
        code = ctypes.get_errno()
        if code != errno.ENOENT or target == "/":
            fail(what + " " + target + ": " + os.strerror(code))

work = os.path.realpath(sys.argv[1])
mount("none", "/", MS_REC | MS_PRIVATE, "make-rprivate")
mount(work, work, MS_BIND | MS_REC, "bind")
with open("/proc/self/mountinfo") as handle:
    points = [re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), line.split()[4]) for line in handle]
for point in dict.fromkeys(points):
    if point == work or point.startswith(work.rstrip("/") + "/"):
        continue
    try:
        kept = os.statvfs(point).f_flag
    except OSError:
        kept = 0
    flags = MS_REMOUNT | MS_BIND | MS_RDONLY
    for st_flag, ms_flag in KEEP:
        if kept & st_flag:
            flags |= ms_flag
    mount("none", point, flags, "remount read-only")
if not os.statvfs("/").f_flag & os.ST_RDONLY:
    fail("/ is still writable")
if os.statvfs(work).f_flag & os.ST_RDONLY or not os.access(work, os.W_OK):
    fail(work + " is not writable")
os.chdir(os.getcwd())  # the old cwd is the directory under the read-only mount; re-enter it through the bind
command = sys.argv[2:]
try:
    os.execvp(command[0], command)
except OSError as exc:
    fail("cannot exec " + command[0] + ": " + str(exc))
"""
"""The first process in the namespaces: ``python -c _BOOTSTRAP WORKDIR COMMAND...`` (see the module docstring)."""


def _unshare_prefix() -> list[str]:
    """The ``unshare`` command line that puts a process into fresh network, PID and mount namespaces."""
    prefix = ["unshare", "--net", "--pid", "--fork", "--kill-child", "--mount"]
    if os.geteuid() != 0:
        prefix.insert(1, "--map-root-user")
    return prefix


def _sandbox_prefix(workdir: Path) -> list[str]:
    """``unshare`` plus the bootstrap that leaves only ``workdir`` writable; the command follows it."""
    return [*_unshare_prefix(), sys.executable, "-I", "-S", "-c", _BOOTSTRAP, str(workdir)]


def isolation_available() -> tuple[bool, str]:
    """Whether network/PID/mount namespaces and the read-only remount work here, and why not; probed once, then
    cached."""
    global _probe_cache
    if _probe_cache is None:
        _probe_cache = _probe_isolation()
        logger.info("sandbox isolation probe: available=%s (%s)", *_probe_cache)
    return _probe_cache


def reset_isolation_probe() -> None:
    """Forget the cached probe answer (the next ``isolation_available`` probes again)."""
    global _probe_cache
    _probe_cache = None


def _probe_isolation() -> tuple[bool, str]:
    """Run the sandbox's own prefix (namespaces + read-only bootstrap) on a probe that writes inside its directory
    and must fail to write outside it; say whether it all worked."""
    if not sys.platform.startswith("linux"):
        return False, f"namespaces need Linux (this is {sys.platform})"
    if shutil.which("unshare") is None:
        return False, "the util-linux `unshare` command is not installed"
    with tempfile.TemporaryDirectory(prefix="doctune-probe-") as work:
        outside = Path(work).parent / f"{Path(work).name}-outside"
        inside = Path(work) / "inside"
        check = (
            f"open({str(inside)!r}, 'w').close()\n"
            f"try:\n    open({str(outside)!r}, 'w').close()\nexcept OSError:\n    pass\n"
            "else:\n    raise SystemExit('wrote outside its directory')\n"
        )
        command = [*_sandbox_prefix(Path(work)), sys.executable, "-I", "-S", "-c", check]
        shown = " ".join([*_unshare_prefix(), "<read-only bootstrap>"])
        try:
            done = subprocess.run(
                command, capture_output=True, text=True, timeout=PROBE_TIMEOUT_S, check=False, cwd=work
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            return False, f"`{shown}` could not run: {exc}"
        finally:
            escaped = outside.exists()
            with contextlib.suppress(OSError):
                outside.unlink()
        if done.returncode != 0 or escaped or not inside.exists():
            reason = done.stderr.strip() or f"exit status {done.returncode}"
            if escaped:
                reason = f"the probe wrote {outside} outside its directory"
            return False, f"`{shown}` failed: {reason}"
    return True, f"`{shown}` works (network, PID, mount namespaces; read-only file system)"


def _set_limits(limits: SandboxLimits) -> None:
    """Apply the resource limits in the child just before exec (runs as ``preexec_fn``)."""
    cpu = max(1, int(limits.cpu_s))
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
    memory = int(limits.memory_mb) * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    resource.setrlimit(resource.RLIMIT_NPROC, (limits.max_processes, limits.max_processes))
    resource.setrlimit(resource.RLIMIT_FSIZE, (FILE_SIZE_LIMIT_BYTES, FILE_SIZE_LIMIT_BYTES))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def _clean_env(workdir: Path, python: str, env_path: str | None) -> dict[str, str]:
    """The whole environment of a sandboxed run: no proxies, keys or user settings leak in."""
    python_dir = str(Path(python).parent)
    pythonpath = [str(workdir)]
    if env_path:
        pythonpath.append(str(Path(env_path).resolve()))
    return {
        "PATH": os.pathsep.join([python_dir, "/usr/local/bin", "/usr/bin", "/bin"]),
        "PYTHONPATH": os.pathsep.join(pythonpath),
        "HOME": str(workdir),
        "TMPDIR": str(workdir),
        "LANG": "C.UTF-8",
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONHASHSEED": "0",
        "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1",
    }


def _safe_relative(name: str) -> PurePosixPath | None:
    """``name`` as a relative path inside the sandbox directory, or None when it would escape it."""
    path = PurePosixPath(name)
    if not name or path.is_absolute() or ".." in path.parts or name.startswith("~"):
        return None
    return path


def _write_files(workdir: Path, files: Mapping[str, str]) -> str | None:
    """Write ``files`` (relative path -> text) under ``workdir``; return a reason when a name is unsafe."""
    for name, text in files.items():
        relative = _safe_relative(name)
        if relative is None:
            return f"refusing file name {name!r}: not a relative path inside the sandbox"
        target = workdir / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
    return None


def _read_capped(path: Path, max_bytes: int) -> str:
    """The first ``max_bytes`` of a captured output file, with a note when it was longer."""
    with path.open("rb") as handle:
        data = handle.read(max_bytes + 1)
    text = data[:max_bytes].decode("utf-8", errors="replace")
    if len(data) > max_bytes:
        text += f"\n[output truncated at {max_bytes} bytes]"
    return text


def _relative_to(text: str, workdir: Path) -> str:
    """``text`` with the sandbox directory's absolute path removed (``/tmp/doctune-sandbox-x/a.py`` -> ``a.py``)."""
    for form in {str(workdir), str(workdir.resolve())}:
        text = text.replace(form + "/", "").replace(form, ".")
    return text


def _kill_group(process: subprocess.Popen) -> None:
    """SIGKILL the run's process group (the PID namespace takes everything else down with its init)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
    with contextlib.suppress(ProcessLookupError):
        process.kill()


def _run_isolated(
    files: Mapping[str, str],
    argv_after_python: list[str],
    limits: SandboxLimits,
    python: str | None,
    env_path: str | None,
    pytest_exit_codes: bool,
) -> SandboxResult:
    """Write ``files`` to a fresh directory and run ``python <argv_after_python>`` there inside the namespaces."""
    available, reason = isolation_available()
    if not available:
        raise SandboxUnavailable(f"refusing to execute code without OS-level isolation: {reason}")
    interpreter = python or sys.executable
    command = [interpreter, *argv_after_python]
    started = time.monotonic()
    with (
        tempfile.TemporaryDirectory(prefix="doctune-sandbox-") as work,
        tempfile.TemporaryDirectory(prefix="doctune-sandbox-out-") as out,
    ):
        workdir, outdir = Path(work), Path(out)
        problem = _write_files(workdir, files)
        if problem is not None:
            return SandboxResult("error", None, "", problem, 0.0, command)
        stdout_path, stderr_path = outdir / "stdout", outdir / "stderr"
        timed_out = False
        try:
            with stdout_path.open("wb") as stdout, stderr_path.open("wb") as stderr:
                process = subprocess.Popen(
                    [*_sandbox_prefix(workdir), *command],
                    cwd=workdir,
                    env=_clean_env(workdir, interpreter, env_path),
                    stdin=subprocess.DEVNULL,
                    stdout=stdout,
                    stderr=stderr,
                    start_new_session=True,
                    preexec_fn=lambda: _set_limits(limits),
                )
                try:
                    returncode: int | None = process.wait(timeout=limits.timeout_s)
                except subprocess.TimeoutExpired:
                    timed_out = True
                    _kill_group(process)
                    returncode = process.wait()
        except (OSError, subprocess.SubprocessError) as exc:
            return SandboxResult("error", None, "", f"could not start the sandbox: {exc}", 0.0, command)
        duration = time.monotonic() - started
        # the run's temporary directory is an absolute local path: outputs name files relative to it instead
        stdout_text = _relative_to(_read_capped(stdout_path, limits.max_output_bytes), workdir)
        stderr_text = _relative_to(_read_capped(stderr_path, limits.max_output_bytes), workdir)
    status = _status(returncode, timed_out, pytest_exit_codes)
    if returncode == BOOTSTRAP_EXIT and stderr_text.startswith(_BOOTSTRAP_MARK):
        status = "error"
    logger.debug("sandbox run %s -> %s in %.2fs", command, status, duration)
    return SandboxResult(status, returncode, stdout_text, stderr_text, duration, command)


def _status(returncode: int | None, timed_out: bool, pytest_exit_codes: bool) -> SandboxStatus:
    """Map an exit status to a verdict; pytest's 3 (internal), 4 (usage) and 5 (no tests) are errors."""
    if timed_out:
        return "timeout"
    if returncode == 0:
        return "passed"
    if pytest_exit_codes and returncode in (3, 4, 5):
        return "error"
    return "failed"


def run_python_tests(
    files: Mapping[str, str],
    test_file: str,
    limits: SandboxLimits | None = None,
    python: str | None = None,
    env_path: str | None = None,
) -> SandboxResult:
    """Run ``pytest -q -x`` on ``test_file`` among ``files`` (relative path -> text) in the sandbox.

    ``python`` is the interpreter (default: the one running doctune; it must have pytest); ``env_path`` is a
    repository folder put on PYTHONPATH so the tests can import its modules. Raises ``SandboxUnavailable`` when
    isolation cannot be created. pytest's plugin auto-loading is off (plugins a repository needs are not loaded).
    """
    limits = limits or SandboxLimits()
    if test_file not in files:
        return SandboxResult("error", None, "", f"test file {test_file!r} is not among the files", 0.0, [])
    files = dict(files)
    if not any(name in ("pytest.ini", "pyproject.toml", "tox.ini", "setup.cfg") for name in files):
        files["pytest.ini"] = "[pytest]\n"  # stops pytest from picking up a config file above the temp dir
    argv = ["-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", test_file]
    return _run_isolated(files, argv, limits, python, env_path, pytest_exit_codes=True)


def run_python_code(code: str, limits: SandboxLimits | None = None, python: str | None = None) -> SandboxResult:
    """Run ``code`` as a script (``python main.py``) in the sandbox; passed means exit status 0."""
    limits = limits or SandboxLimits()
    return _run_isolated({"main.py": code}, ["main.py"], limits, python, None, pytest_exit_codes=False)


def run_python_script(
    files: Mapping[str, str],
    script_file: str,
    limits: SandboxLimits | None = None,
    python: str | None = None,
    env_path: str | None = None,
) -> SandboxResult:
    """Run ``python script_file`` among ``files`` (relative path -> text) in the sandbox; passed means exit 0."""
    limits = limits or SandboxLimits()
    if script_file not in files:
        return SandboxResult("error", None, "", f"script {script_file!r} is not among the files", 0.0, [])
    return _run_isolated(files, [script_file], limits, python, env_path, pytest_exit_codes=False)
