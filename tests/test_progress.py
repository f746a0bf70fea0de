"""Progress of a stage written into the workspace (doctune.progress): in this process and read from another."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from doctune.jobs import Job, run_jobs
from doctune.progress import clear_progress, progress_bar, progress_dir, read_progress, set_progress_root


@pytest.fixture
def root(tmp_path: Path):
    set_progress_root(tmp_path, "test stage")
    yield tmp_path
    set_progress_root(None, None)


def files(root: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted(progress_dir(root).glob("*.json"))]


@pytest.mark.parametrize("disable", [False, True])
def test_bar_writes_its_progress(root, disable):
    with progress_bar(total=50, desc="work", unit="item", disable=disable) as bar:
        (running,) = files(root)
        assert running["state"] == "running" and running["n"] == 0 and running["total"] == 50
        for _ in range(50):
            bar.update(1)
            bar.set_postfix(failed=0)
    (done,) = files(root)
    assert done["state"] == "done" and done["n"] == 50 and done["total"] == 50
    assert done["stage"] == "test stage" and done["desc"] == "work" and done["unit"] == "item"
    assert done["postfix"] == "failed=0" and done["started_at"] <= done["updated_at"]
    (entry,) = read_progress(root)
    assert entry["alive"] and entry["percent"] == 100.0 and entry["state"] == "done"


@pytest.mark.parametrize("disable", [False, True])
def test_iterating_bar_counts_every_item(root, disable):
    assert [x for x in progress_bar(range(7), desc="loop", disable=disable)] == list(range(7))
    (done,) = files(root)
    assert (done["n"], done["total"], done["state"]) == (7, 7, "done")


def test_stopped_and_failed_bars(root):
    with progress_bar(total=5, desc="early") as bar:
        bar.update(2)
    with pytest.raises(RuntimeError), progress_bar(total=5, desc="broken") as bar:
        bar.update(1)
        raise RuntimeError("boom")
    states = {e["desc"]: e["state"] for e in read_progress(root)}
    assert states == {"early": "stopped", "broken": "failed"}


def test_no_root_writes_nothing(tmp_path):
    set_progress_root(None, None)
    with progress_bar(total=3) as bar:
        bar.update(3)
    assert not progress_dir(tmp_path).exists() and read_progress(tmp_path) == []


def test_unwritable_root_never_raises(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    set_progress_root(blocker, "x")  # <root>/progress cannot be made
    try:
        with progress_bar(total=3) as bar:
            bar.update(3)
        assert [x for x in progress_bar([1, 2])] == [1, 2]
    finally:
        set_progress_root(None, None)


def test_read_progress_deletes_old_finished_files(root):
    with progress_bar(total=1) as bar:
        bar.update(1)
    assert len(read_progress(root)) == 1
    assert read_progress(root, max_age_s=-1) == []
    assert list(progress_dir(root).glob("*.json")) == []
    with progress_bar(total=1):
        assert len(read_progress(root, max_age_s=-1)) == 1  # a running bar is kept
        clear_progress(root)
        assert list(progress_dir(root).glob("*")) == []


def test_run_jobs_reports_every_job(root):
    results = run_jobs(
        [Job(str(i), lambda i=i: i * i) for i in range(9)], max_concurrency=3, desc="jobs", progress=False
    )
    assert [r.value for r in results] == [i * i for i in range(9)]
    (done,) = files(root)
    assert (done["desc"], done["n"], done["total"], done["state"], done["unit"]) == ("jobs", 9, 9, "done", "job")


def _child(root: Path, steps: int) -> subprocess.Popen:
    script = textwrap.dedent(f"""
        import time
        from pathlib import Path
        from doctune.progress import progress_bar, set_progress_root
        set_progress_root(Path({str(root)!r}), "child stage")
        with progress_bar(total={steps}, desc="child", disable=True) as bar:
            for _ in range({steps}):
                time.sleep(0.2)
                bar.update(1)
    """)
    return subprocess.Popen([sys.executable, "-c", script])


def _wait_for(predicate, timeout: float = 10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = predicate()
        if found:
            return found
        time.sleep(0.05)
    raise AssertionError("timed out")


def test_another_process_is_seen_live_then_done_or_interrupted(tmp_path):
    done_root, killed_root = tmp_path / "done", tmp_path / "killed"
    done_root.mkdir()
    killed_root.mkdir()
    finishing, killed = _child(done_root, 10), _child(killed_root, 100)
    try:
        seen: list[int] = []
        while finishing.poll() is None:
            entries = read_progress(done_root)
            if entries and entries[0]["alive"] and entries[0]["state"] == "running":
                assert entries[0]["pid"] == finishing.pid and entries[0]["stage"] == "child stage"
                seen.append(entries[0]["n"])
            time.sleep(0.1)
        assert finishing.returncode == 0
        assert seen == sorted(seen) and len(set(seen)) >= 2, seen  # n grows while the process runs
        (entry,) = read_progress(done_root)
        assert (entry["state"], entry["n"], entry["total"], entry["alive"]) == ("done", 10, 10, False)

        _wait_for(lambda: [e for e in read_progress(killed_root) if e["n"] >= 1])
    finally:
        killed.kill()
        killed.wait()  # reaped: no longer a zombie that os.kill(pid, 0) finds
        finishing.kill()
        finishing.wait()
    (entry,) = read_progress(killed_root)
    assert entry["state"] == "interrupted" and not entry["alive"] and 1 <= entry["n"] < 100


def test_training_callback_reports_steps_and_loss(root):
    from types import SimpleNamespace

    from doctune.train.progress_callback import WorkspaceProgressCallback

    callback = WorkspaceProgressCallback("train run-1")
    state = SimpleNamespace(max_steps=4, global_step=0)
    callback.on_train_begin(None, state, None)
    for step in range(1, 4):
        state.global_step = step
        callback.on_log(None, state, None, logs={"loss": 2.0 / step})
        callback.on_step_end(None, state, None)
    (running,) = read_progress(root)
    assert (running["desc"], running["total"], running["state"], running["unit"]) == (
        "train run-1",
        4,
        "running",
        "step",
    )
    callback.on_train_end(None, state, None)  # stopped early at step 3: still done
    (done,) = read_progress(root)
    assert (done["n"], done["total"], done["state"], done["postfix"]) == (3, 3, "done", "loss=0.6667")
