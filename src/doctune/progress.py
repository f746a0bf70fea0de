"""Progress of a running stage, shared through the workspace: another process (the web workbench) shows it live.

Every long loop of a stage runs through :func:`progress_bar`, a ``tqdm`` that also writes its state to
``<workspace>/progress/<pid>-<n>.json`` (``n`` counts the bars of the process). The file is replaced atomically, at
most once per :data:`WRITE_INTERVAL_S` and once more when the bar closes. Nothing is written until
:func:`set_progress_root` names a workspace (the CLI does, once per command); writing never raises.

:func:`read_progress` is the reader's side: every bar, newest first, with whether its process still runs.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import logging
import os
import threading
import time
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

log = logging.getLogger(__name__)

PROGRESS_DIR = "progress"
#: at most one write of a bar's file per this many seconds (plus one when it closes or changes state)
WRITE_INTERVAL_S = 0.5
#: the states a bar's file can hold; ``read_progress`` adds "interrupted" (process gone while "running")
STATES = ("running", "done", "stopped", "failed")

_root: Path | None = None
_stage: str | None = None
_counter = itertools.count(1)
_counter_lock = threading.Lock()


def set_progress_root(workspace_root: Path | None, stage: str | None) -> None:
    """Write the progress of the bars opened from now on under ``workspace_root`` (None: write nothing), labelled
    ``stage`` (e.g. ``"generate qa"``)."""
    global _root, _stage
    _root = Path(workspace_root) if workspace_root is not None else None
    _stage = stage


def progress_target() -> tuple[Path | None, str | None]:
    """(workspace root, stage label) set by :func:`set_progress_root` (processes started to train take them on)."""
    return _root, _stage


def progress_dir(workspace_root: Path) -> Path:
    return Path(workspace_root) / PROGRESS_DIR


class ProgressBar(tqdm):
    """A ``tqdm`` that also writes its progress into the workspace (see the module docstring).

    ``disable`` only turns the terminal bar off: a disabled bar still counts and writes its file. The file's
    final state is "done" when the bar closes with ``n >= total`` (or no total), "failed" when it closes through a
    ``with`` block left by an exception, "stopped" otherwise (closed early).
    """

    def __init__(self, *args: Any, **kwargs: Any):
        # set before tqdm's __init__: close() may run (from __del__) even when that raises
        self._progress_path: Path | None = None
        self._progress_closed = False
        self._progress_failed = False
        self._progress_last_write = 0.0
        self._progress_lock = threading.Lock()
        self._progress_started = time.time()
        self._progress_stage = _stage
        root = _root
        super().__init__(*args, **kwargs)
        self._quiet = bool(self.disable)  # the terminal bar is off (asked, or tqdm's own choice): count here
        if self._quiet:
            self.desc = kwargs.get("desc") or ""
            self.unit = kwargs.get("unit", "it")
        if root is not None:
            with _counter_lock:
                number = next(_counter)
            self._progress_path = progress_dir(root) / f"{os.getpid()}-{number}.json"
            self._write_progress("running", force=True)

    def __iter__(self):
        if not self._quiet:
            yield from super().__iter__()  # tqdm calls update() as it displays and close() at the end
            return
        try:
            for obj in self.iterable:
                yield obj
                self.update(1)
        finally:
            self.close()

    def update(self, n: float | None = 1) -> bool | None:
        if self._quiet:
            if not self._progress_closed:
                self.n += n or 0
            shown = None
        else:
            shown = super().update(n)
        self._write_progress("running")
        return shown

    def __exit__(self, exc_type: Any, exc_value: Any, traceback: Any) -> None:
        if exc_type is not None:
            self._progress_failed = True
        super().__exit__(exc_type, exc_value, traceback)

    def close(self) -> None:
        try:
            super().close()
        finally:
            if not getattr(self, "_progress_closed", True):
                self._progress_closed = True
                total = getattr(self, "total", None)
                if self._progress_failed:
                    state = "failed"
                elif total is None or self.n >= total:
                    state = "done"
                else:
                    state = "stopped"
                self._write_progress(state, force=True)

    def _write_progress(self, state: str, force: bool = False) -> None:
        """Replace the bar's file (at most every WRITE_INTERVAL_S unless ``force``); never raises."""
        path = getattr(self, "_progress_path", None)
        if path is None:
            return
        try:
            now = time.time()
            if not force and (self._progress_closed or now - self._progress_last_write < WRITE_INTERVAL_S):
                return
            with self._progress_lock:
                self._progress_last_write = now
                desc = str(getattr(self, "desc", "") or "").removesuffix(": ")
                total = getattr(self, "total", None)
                data = {
                    "pid": os.getpid(),
                    "stage": self._progress_stage,
                    "desc": desc,
                    "n": self.n,
                    "total": total,
                    "unit": str(getattr(self, "unit", "it")),
                    "started_at": self._progress_started,
                    "updated_at": now,
                    "state": state,
                    "postfix": str(getattr(self, "postfix", None) or ""),
                }
                path.parent.mkdir(exist_ok=True)  # in an existing workspace only
                tmp = path.with_name(f".{path.stem}.{threading.get_ident()}.tmp")
                tmp.write_text(json.dumps(data), encoding="utf-8")
                os.replace(tmp, path)
        except Exception as exc:  # progress is a courtesy: it never breaks the stage
            with contextlib.suppress(Exception):
                log.debug("progress file %s not written: %s", path, exc)


def progress_bar(
    iterable: Any = None,
    *,
    total: float | None = None,
    desc: str = "",
    unit: str = "it",
    disable: bool = False,
    **tqdm_kwargs: Any,
) -> ProgressBar:
    """A ``tqdm.auto.tqdm`` bar that also writes its progress into the workspace set by :func:`set_progress_root`.

    ``disable`` turns off only the terminal bar; the file is written whenever a workspace is set."""
    return ProgressBar(iterable, total=total, desc=desc, unit=unit, disable=disable, **tqdm_kwargs)


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` still runs (an unreaped child of the caller counts as running)."""
    if pid <= 0:
        return False
    if os.name == "nt":  # os.kill would terminate the process there
        return _pid_alive_windows(pid)
    try:
        os.kill(pid, 0)
    except PermissionError:
        return True  # it runs, as another user
    except OSError:
        return False
    return True


def _pid_alive_windows(pid: int) -> bool:  # pragma: no cover - Windows only
    import ctypes

    kernel32 = ctypes.windll.kernel32  # type: ignore[attr-defined]
    handle = kernel32.OpenProcess(0x1000, False, pid)  # PROCESS_QUERY_LIMITED_INFORMATION
    if not handle:
        return kernel32.GetLastError() == 5  # access denied: it runs
    try:
        code = ctypes.c_ulong()
        kernel32.GetExitCodeProcess(handle, ctypes.byref(code))
        return code.value == 259  # STILL_ACTIVE
    finally:
        kernel32.CloseHandle(handle)


def read_progress(workspace_root: Path, max_age_s: float = 3600) -> list[dict[str, Any]]:
    """Every progress file of the workspace, the most recently started first.

    Each entry is the file's content plus ``id`` (the file's name without ``.json``), ``alive`` (its process still
    runs) and ``percent`` (0-100, None without a total). A "running" bar whose process is gone is reported as
    "interrupted". Files of finished (or interrupted) bars not updated for ``max_age_s`` seconds are deleted.
    """
    folder = progress_dir(workspace_root)
    if not folder.is_dir():
        return []
    now = time.time()
    out: list[dict[str, Any]] = []
    alive_of: dict[int, bool] = {}
    for path in folder.iterdir():
        name = path.name
        if name.endswith(".tmp"):  # a writer's leftover (killed between write and replace)
            with contextlib.suppress(OSError):
                if now - path.stat().st_mtime > max_age_s:
                    path.unlink()
            continue
        if not name.endswith(".json"):
            continue
        try:
            entry = json.loads(path.read_text(encoding="utf-8"))
            pid = int(entry["pid"])
        except (OSError, ValueError, KeyError, TypeError):
            continue  # gone meanwhile, or not ours
        if pid not in alive_of:
            alive_of[pid] = pid_alive(pid)
        alive = alive_of[pid]
        if entry.get("state") == "running" and not alive:
            entry["state"] = "interrupted"
        updated = float(entry.get("updated_at") or 0)
        if entry.get("state") != "running" and now - updated > max_age_s:
            with contextlib.suppress(OSError):
                path.unlink()
            continue
        total, n = entry.get("total"), entry.get("n") or 0
        entry["percent"] = round(100.0 * n / total, 1) if total else None
        entry["alive"] = alive
        entry["id"] = path.stem
        out.append(entry)
    out.sort(key=lambda e: (float(e.get("started_at") or 0), e["id"]), reverse=True)
    return out


def clear_progress(workspace_root: Path) -> None:
    """Delete every progress file of the workspace (tests)."""
    folder = progress_dir(workspace_root)
    if not folder.is_dir():
        return
    for path in folder.iterdir():
        if path.is_file():
            with contextlib.suppress(OSError):
                path.unlink()
