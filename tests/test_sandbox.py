"""The execution sandbox (namespaces, limits, refusal) and the source mutations built on it."""

from __future__ import annotations

import ast
import os
import tempfile
import textwrap
import time
from pathlib import Path

import pytest

from doctune.sandbox import (
    MUTANT_KINDS,
    SandboxLimits,
    SandboxUnavailable,
    mutants,
    mutation_caught,
    run_python_code,
    run_python_tests,
    runner,
)

FAST = SandboxLimits(timeout_s=4, cpu_s=4)

SMALL_MODULE = textwrap.dedent(
    '''\
    def clamp(value, low, high):
        """Limit value to [low, high]; None when the range is empty."""
        if low > high or not isinstance(value, int):
            return None
        if value < low:
            return low
        if value >= high:  # the upper bound is inclusive
            return high
        return value * 1 + 0


    def bonus(points):
        """Points past 100 count double."""
        if points > 100:
            return points + (points - 100)
        return points
    '''
)

CLAMP_TEST = textwrap.dedent(
    """\
    from small import clamp

    def test_clamp():
        assert clamp(5, 0, 10) == 5
        assert clamp(-3, 0, 10) == 0
        assert clamp(12, 0, 10) == 10
    """
)


def test_a_passing_test_passes() -> None:
    files = {"calc.py": "def add(a, b):\n    return a + b\n"}
    files["test_calc.py"] = "from calc import add\n\ndef test_add():\n    assert add(2, 3) == 5\n"
    result = run_python_tests(files, "test_calc.py", FAST)
    assert result.status == "passed", result.summary()
    assert result.returncode == 0
    assert "1 passed" in result.stdout
    assert result.duration_s < 5


def test_a_failing_test_fails() -> None:
    files = {"calc.py": "def add(a, b):\n    return a - b\n"}
    files["test_calc.py"] = "from calc import add\n\ndef test_add():\n    assert add(2, 3) == 5\n"
    result = run_python_tests(files, "test_calc.py", FAST)
    assert result.status == "failed", result.summary()
    assert result.returncode == 1
    assert "1 failed" in result.stdout


def test_no_tests_collected_is_an_error_not_a_pass() -> None:
    result = run_python_tests({"test_empty.py": "X = 1\n"}, "test_empty.py", FAST)
    assert result.status == "error", result.summary()


def test_file_names_that_escape_the_sandbox_are_refused(tmp_path: Path) -> None:
    outside = tmp_path / "escaped.py"
    result = run_python_tests({str(outside): "X = 1\n", "test_a.py": "def test_a():\n    pass\n"}, "test_a.py", FAST)
    assert result.status == "error"
    assert not outside.exists()
    assert run_python_tests({"../up.py": "", "test_a.py": ""}, "test_a.py", FAST).status == "error"


def test_a_script_runs_in_a_clean_environment_and_a_fresh_directory(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-secret")
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy:3128")
    code = "import os\nprint(sorted(os.listdir('.')))\nprint(os.environ.get('OPENAI_API_KEY'), os.environ.get('HTTPS_PROXY'))\nprint(os.environ['HOME'] == os.getcwd())\n"
    result = run_python_code(code, FAST)
    assert result.status == "passed", result.summary()
    assert result.stdout.split("\n")[:3] == ["['main.py']", "None None", "True"]


def _live_processes_with(marker: str) -> list[str]:
    """PIDs (seen from here) of processes, zombies excepted, whose command line contains ``marker``."""
    found = []
    for proc in Path("/proc").iterdir():
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            state = (proc / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError, ValueError):
            continue
        if marker in cmdline and state != "Z":
            found.append(proc.name)
    return found


def test_an_endless_loop_times_out_and_its_children_die() -> None:
    marker = "300.4242"
    code = textwrap.dedent(
        f"""\
        import os, subprocess
        child = subprocess.Popen(["sleep", "{marker}"], start_new_session=True)  # tries to leave the group
        print("started", flush=True)
        while True:
            pass
        """
    )
    result = run_python_code(code, SandboxLimits(timeout_s=1.5, cpu_s=4))
    assert result.status == "timeout", result.summary()
    assert result.returncode is not None and result.returncode < 0
    assert "started" in result.stdout
    assert 1.4 < result.duration_s < 4
    deadline = time.monotonic() + 2
    while _live_processes_with(marker) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _live_processes_with(marker) == []


def test_the_repository_environment_is_importable(tmp_path: Path) -> None:
    (tmp_path / "repo_mod.py").write_text("ANSWER = 42\n")
    test = "import repo_mod\n\ndef test_env():\n    assert repo_mod.ANSWER == 42\n"
    assert run_python_tests({"test_env.py": test}, "test_env.py", FAST, env_path=str(tmp_path)).status == "passed"
    assert run_python_tests({"test_env.py": test}, "test_env.py", FAST).status == "failed"


def test_cpu_limit_kills_a_busy_loop_before_the_wall_clock() -> None:
    result = run_python_code("while True:\n    pass\n", SandboxLimits(timeout_s=8, cpu_s=1))
    assert result.status == "failed", result.summary()
    assert result.duration_s < 5


def test_a_socket_to_the_internet_fails() -> None:
    code = textwrap.dedent(
        """\
        import socket
        sock = socket.create_connection(("1.1.1.1", 80), timeout=2)
        print("connected")
        """
    )
    result = run_python_code(code, FAST)
    assert result.status == "failed", result.summary()
    assert "connected" not in result.stdout
    assert "unreachable" in result.stderr.lower() or "OSError" in result.stderr


def test_even_loopback_is_down() -> None:
    code = "import socket\ns = socket.socket()\ns.bind(('127.0.0.1', 0))\ns.listen()\nsocket.create_connection(s.getsockname(), timeout=1)\n"
    result = run_python_code(code, FAST)
    assert result.status == "failed", result.summary()


def test_curl_fails() -> None:
    code = textwrap.dedent(
        """\
        import subprocess, sys
        done = subprocess.run(["curl", "-sS", "--max-time", "3", "http://example.com"], capture_output=True, text=True)
        print(done.stderr)
        sys.exit(done.returncode)
        """
    )
    result = run_python_code(code, FAST)
    assert result.status == "failed", result.summary()
    assert result.returncode not in (0, None)
    assert "Example Domain" not in result.stdout


def test_a_memory_hog_is_stopped() -> None:
    code = "block = bytearray(2 * 1024 ** 3)\nprint('allocated', len(block))\n"
    result = run_python_code(code, SandboxLimits(timeout_s=4, cpu_s=4, memory_mb=256))
    assert result.status == "failed", result.summary()
    assert "allocated" not in result.stdout
    assert "MemoryError" in result.stderr


def test_output_is_truncated() -> None:
    result = run_python_code("print('x' * 100_000)\n", SandboxLimits(timeout_s=4, max_output_bytes=1000))
    assert result.status == "passed"
    assert result.stdout.startswith("x" * 1000)
    assert "truncated at 1000 bytes" in result.stdout
    assert len(result.stdout) < 1100


def test_nothing_runs_when_isolation_is_unavailable(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(runner, "isolation_available", lambda: (False, "unshare: operation not permitted"))
    marker = tmp_path / "ran"
    with pytest.raises(SandboxUnavailable, match="operation not permitted"):
        run_python_code(f"open({str(marker)!r}, 'w').write('x')\n", FAST)
    with pytest.raises(SandboxUnavailable):
        run_python_tests({"test_a.py": "def test_a():\n    pass\n"}, "test_a.py", FAST)
    with pytest.raises(SandboxUnavailable):
        mutation_caught("small", SMALL_MODULE, SMALL_MODULE, CLAMP_TEST, FAST)
    assert not marker.exists()


def test_the_probe_reports_a_missing_unshare(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(runner.shutil, "which", lambda name: None)
    runner.reset_isolation_probe()
    try:
        available, reason = runner.isolation_available()
        assert not available
        assert "unshare" in reason
    finally:
        monkeypatch.undo()
        runner.reset_isolation_probe()
    assert runner.isolation_available()[0]  # this machine has unshare (root): the real probe succeeds


def test_the_file_system_is_read_only_outside_the_run_directory() -> None:
    stamp = f"doctune-escape-{os.getpid()}-{time.monotonic_ns()}"
    repository = Path(__file__).resolve().parents[1]
    targets = [Path(tempfile.gettempdir()) / stamp, repository / stamp, Path("/dev/shm") / stamp]
    code = textwrap.dedent(
        f"""\
        import os, sys
        for path in {[str(t) for t in targets]!r}:
            try:
                open(path, "w").write("x")
            except OSError as exc:
                print("denied", exc.errno)
            else:
                print("wrote", path)
        open("inside.txt", "w").write("ok")
        open(os.path.join(os.environ["TMPDIR"], "tmp.txt"), "w").write("ok")
        print(sorted(os.listdir(".")))
        print(len(open(os.__file__).read()) > 0)
        """
    )
    result = run_python_code(code, FAST)
    assert result.status == "passed", result.summary()
    assert result.stdout.split("\n")[:5] == ["denied 30"] * 3 + ["['inside.txt', 'main.py', 'tmp.txt']", "True"]
    assert [t for t in targets if t.exists()] == []


def test_a_test_that_writes_outside_fails_and_leaves_nothing(tmp_path: Path) -> None:
    target = tmp_path / "written-by-the-sandbox"
    test = f"def test_write():\n    open({str(target)!r}, 'w').write('x')\n"
    result = run_python_tests({"test_w.py": test}, "test_w.py", FAST)
    assert result.status == "failed", result.summary()
    assert "Read-only file system" in result.stdout
    assert not target.exists()


def test_the_probe_refuses_a_bootstrap_that_leaves_the_file_system_writable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(runner, "_BOOTSTRAP", "import os, sys\nos.execvp(sys.argv[2], sys.argv[2:])\n")
    runner.reset_isolation_probe()
    try:
        available, reason = runner.isolation_available()
        assert not available
        assert "outside its directory" in reason
    finally:
        monkeypatch.undo()
        runner.reset_isolation_probe()


def test_a_failing_bootstrap_is_an_error_and_runs_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    failing = (
        "import sys\nsys.stderr.write('doctune sandbox bootstrap: remount read-only /: denied\\n')\nsys.exit(125)\n"
    )
    monkeypatch.setattr(runner, "_BOOTSTRAP", failing)
    monkeypatch.setattr(runner, "isolation_available", lambda: (True, "pretend"))
    result = run_python_code("print('ran')\n", FAST)
    assert result.status == "error", result.summary()
    assert "ran" not in result.stdout
    assert "remount read-only" in result.stderr


def test_mutants_of_a_small_function_cover_every_kind() -> None:
    found = mutants(SMALL_MODULE, max_mutants=100)
    assert {mutant.kind for mutant in found} == set(MUTANT_KINDS)
    original_tree = ast.dump(ast.parse(SMALL_MODULE))
    for mutant in found:
        assert mutant.source != SMALL_MODULE
        assert ast.dump(ast.parse(mutant.source)) != original_tree
        changed = [
            n
            for n, (a, b) in enumerate(zip(SMALL_MODULE.splitlines(), mutant.source.splitlines(), strict=True), 1)
            if a != b
        ]
        assert changed == [mutant.line], mutant.description  # one change, on the line it names; layout kept
    descriptions = {mutant.description for mutant in found}
    assert "line 5: `<` -> `<=`" in descriptions
    assert "line 7: `>=` -> `>`" in descriptions
    assert "line 3: `or` -> `and`" in descriptions
    assert "line 3: `not` removed" in descriptions
    assert "line 9: `*` -> `/`" in descriptions
    assert "line 15: `100` -> `101`" in descriptions
    assert "line 6: `return low` -> `return None`" in descriptions
    assert "# the upper bound is inclusive" in found[0].source
    assert len(descriptions) == len(found)


def test_mutants_are_deterministic_capped_and_mixed() -> None:
    first, second = mutants(SMALL_MODULE, max_mutants=6), mutants(SMALL_MODULE, max_mutants=6)
    assert first == second
    assert len(first) == 6
    assert {mutant.kind for mutant in first} == set(MUTANT_KINDS)
    assert [m.line for m in first] == sorted(m.line for m in first)
    assert mutants("def broken(:\n") == []
    assert mutants("x = 'no operators here'\n") == []


def test_a_mutation_the_test_catches_and_one_it_does_not() -> None:
    by_description = {mutant.description: mutant for mutant in mutants(SMALL_MODULE, max_mutants=100)}
    returns_none = by_description["line 6: `return low` -> `return None`"].source
    caught, detail = mutation_caught("small", SMALL_MODULE, returns_none, CLAMP_TEST, FAST)
    assert caught, detail
    assert detail.startswith("caught")
    # bonus() is never called by the test: a mutant there survives
    untested_branch = by_description["line 15: `100` -> `101`"].source
    missed, detail = mutation_caught("small", SMALL_MODULE, untested_branch, CLAMP_TEST, FAST)
    assert not missed
    assert "passes on the mutant" in detail
    # `<` -> `<=` on the lower bound is an equivalent mutant for these inputs: not caught either
    lower_bound_inclusive = by_description["line 5: `<` -> `<=`"].source
    assert not mutation_caught("small", SMALL_MODULE, lower_bound_inclusive, CLAMP_TEST, FAST)[0]


def test_a_test_that_fails_on_the_original_catches_nothing() -> None:
    bad_test = "from pkg.small import clamp\n\ndef test_wrong():\n    assert clamp(5, 0, 10) == 6\n"
    mutant = mutants(SMALL_MODULE)[0].source
    caught, detail = mutation_caught("pkg.small", SMALL_MODULE, mutant, bad_test, FAST)
    assert not caught
    assert "does not pass on the original" in detail


def test_outputs_do_not_name_the_sandbox_directory() -> None:
    result = run_python_code(
        "import os, sys\nprint(os.getcwd())\nprint(os.path.abspath('x.py'), file=sys.stderr)", FAST
    )
    assert result.status == "passed"
    assert "doctune-sandbox-" not in result.stdout + result.stderr
    assert result.stdout.strip() == "." and result.stderr.strip() == "x.py"
