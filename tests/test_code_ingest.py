"""Repository ingest (``doctune ingest --as code``): units of Python, JavaScript, TypeScript and Go files, roles,
skipped files, licence, the CLI."""

from __future__ import annotations

import shutil
import subprocess
import textwrap

import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from doctune.cli import app
from doctune.config_code import CodeConfig
from doctune.ingest.code.python_units import python_units
from doctune.ingest.code.repo import classify_role, licence_of_text, list_files, scan_repository
from doctune.ingest.code.treesitter_units import treesitter_units

PYTHON_SOURCE = textwrap.dedent(
    '''\
    """Fetching and parsing."""
    import os
    from typing import (
        Any,  # the any type
        List as L,
    )


    @cache
    @retry(times=3)
    async def fetch(url: str, *, retries: int = 3) -> dict[str, Any]:  # a comment
        """Fetch the url."""

        def helper(x):
            return x

        class Local:
            pass

        return {}


    class Parser(Base, metaclass=Meta):
        """A parser."""

        @property
        def name(self): return "p"

        def parse(self,
                  text: str = "a:b",
                  ) -> list:
            """Parse the text."""
            import re
            return []

        class Nested:
            def deep(self):
                pass


    try:
        import ujson
    except ImportError:
        def loads(s):
            return s
    '''
)

MIT_TEXT = """MIT License

Copyright (c) 2024 Someone

Permission is hereby granted, free of charge, to any person obtaining a copy
of this software and associated documentation files (the "Software"), to deal
in the Software without restriction...
"""


def by_qualname(units):
    return {u.qualname: u for u in units}


def test_python_units_decorators_async_nesting_methods_and_line_ranges():
    found = python_units(PYTHON_SOURCE, "pkg/fetching.py")
    units = by_qualname(found.units)
    assert set(units) == {
        "fetching",
        "fetch",
        "Parser",
        "Parser.name",
        "Parser.parse",
        "Parser.Nested",
        "Parser.Nested.deep",
        "loads",
    }  # helper and Local are inside fetch: no units of their own
    kinds = {q: u.kind for q, u in units.items()}
    assert kinds["fetching"] == "module" and kinds["fetch"] == "function" and kinds["loads"] == "function"
    assert kinds["Parser"] == kinds["Parser.Nested"] == "class"
    assert kinds["Parser.name"] == kinds["Parser.parse"] == kinds["Parser.Nested.deep"] == "method"

    lines = PYTHON_SOURCE.split("\n")
    for unit in found.units[1:]:  # the body is exactly the source lines of the range (the module's: the file)
        assert unit.body == "\n".join(lines[unit.line_start - 1 : unit.line_end]).rstrip("\n"), unit.qualname

    fetch = units["fetch"]
    assert lines[fetch.line_start - 1] == "@cache"  # the range starts at the first decorator
    assert lines[fetch.line_end - 1].strip() == "return {}"
    assert fetch.signature == (
        "@cache\n@retry(times=3)\nasync def fetch(url: str, *, retries: int = 3) -> dict[str, Any]:"
    )
    assert "def helper(x):" in fetch.body and "class Local:" in fetch.body
    assert fetch.docstring == "Fetch the url."

    assert units["Parser"].signature == "class Parser(Base, metaclass=Meta):"
    assert units["Parser"].docstring == "A parser."
    assert units["Parser.name"].signature == "@property\ndef name(self):"  # body on the same line
    assert (
        units["Parser.parse"].signature == 'def parse(self,\n              text: str = "a:b",\n              ) -> list:'
    )
    assert units["Parser.parse"].docstring == "Parse the text."
    assert units["fetching"].docstring == "Fetching and parsing."
    assert units["fetching"].body == PYTHON_SOURCE
    assert found.imports == ["import os", "from typing import Any, List as L", "import re", "import ujson"]


JS_SOURCE = """\
import { join } from "path";
const fs = require("fs");

/**
 * Add two numbers.
 */
export function add(a, b) {
  function inner() { return 0; }
  return a + b;
}

// Doubles.
export const double = (x) => x * 2;
let notAUnit = () => 1;

class Shape {
  /** The area. */
  area() { return 0; }
  grow = (k) => k;
}
"""

TS_SOURCE = """\
import type { Config } from "./config";

/** A store. */
export abstract class Store<T> {
  /** Get one. */
  async get(id: string): Promise<T | undefined> {
    return undefined;
  }
  abstract put(item: T): void;
}

export default function (a: number): number { return a; }
"""

GO_SOURCE = """\
// Package geo does geometry.
package geo

import (
\t"fmt"
\tm "math"
)

// Point is a point.
type Point struct{ X, Y float64 }

// Dist is the distance
// between two points.
func Dist(a, b Point) float64 {
\treturn m.Hypot(a.X-b.X, a.Y-b.Y)
}

func (p *Point) Move(dx float64) { p.X += dx }

func (p Point) String() string { return fmt.Sprint(p.X) }
"""


def test_javascript_units():
    found = treesitter_units(JS_SOURCE, "src/math.js", "javascript")
    units = by_qualname(found.units)
    assert set(units) == {"math", "add", "double", "Shape", "Shape.area", "Shape.grow"}
    assert units["add"].kind == "function" and units["add"].docstring == "Add two numbers."
    assert units["add"].signature == "export function add(a, b)"
    assert (units["add"].line_start, units["add"].line_end) == (7, 10) and "function inner()" in units["add"].body
    assert units["double"].docstring == "Doubles." and units["double"].body == "export const double = (x) => x * 2;"
    assert units["Shape.area"].kind == "method" and units["Shape.area"].docstring == "The area."
    assert units["Shape"].kind == "class"
    assert found.imports == ['import { join } from "path";', 'const fs = require("fs");']


def test_typescript_units():
    found = treesitter_units(TS_SOURCE, "src/store.ts", "typescript")
    units = by_qualname(found.units)
    assert set(units) == {"store", "Store", "Store.get", "default"}  # the abstract signature has no body
    assert units["Store"].docstring == "A store." and units["Store"].signature == "export abstract class Store<T>"
    get = units["Store.get"]
    assert get.kind == "method" and get.signature == "async get(id: string): Promise<T | undefined>"
    assert get.docstring == "Get one." and (get.line_start, get.line_end) == (6, 8)
    assert found.imports == ['import type { Config } from "./config";']


def test_go_units():
    found = treesitter_units(GO_SOURCE, "geo/geo.go", "go")
    units = by_qualname(found.units)
    assert set(units) == {"geo", "Dist", "Point.Move", "Point.String"}
    assert units["geo"].docstring == "Package geo does geometry."
    dist = units["Dist"]
    assert dist.kind == "function" and dist.docstring == "Dist is the distance\nbetween two points."
    assert dist.signature == "func Dist(a, b Point) float64" and (dist.line_start, dist.line_end) == (14, 16)
    assert units["Point.Move"].kind == "method" and units["Point.Move"].signature == "func (p *Point) Move(dx float64)"
    assert found.imports == ['"fmt"', 'm "math"']


@pytest.mark.parametrize(
    ("path", "head", "role"),
    [
        ("pkg/core.py", "", "source"),
        ("vendor/lib/x.go", "", "vendored"),
        ("a/third_party/y.py", "", "vendored"),
        ("web/node_modules/z/index.js", "", "vendored"),
        ("api/service_pb2.py", "", "generated"),
        ("static/app.min.js", "", "generated"),
        ("api/types.go", "// Code generated by stringer. DO NOT EDIT.\npackage api\n", "generated"),
        ("gen/x.py", "# @generated by a tool\n", "generated"),
        ("pkg/mentions.py", 'MARKER = "Code generated by x. DO NOT EDIT"\n', "source"),  # a string, no comment
        ("tests/helpers.py", "", "test"),
        ("pkg/test_core.py", "", "test"),
        ("pkg/core_test.py", "", "test"),
        ("geo/geo_test.go", "", "test"),
        ("web/app.test.ts", "", "test"),
        ("web/app.spec.js", "", "test"),
    ],
)
def test_classify_role(path, head, role):
    assert classify_role(path, head) == role


def write(root, rel, content):
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    return path


@pytest.fixture
def repo(tmp_path):
    """A small repository folder with every kind of file the walk meets."""
    root = tmp_path / "toyrepo"
    write(root, "LICENSE", MIT_TEXT)
    write(root, "toy/core.py", 'def add(a, b):\n    """Add."""\n    return a + b\n')
    write(root, "toy/broken.py", "def oops(:\n    pass\n")
    write(root, "tests/test_core.py", "def test_add():\n    assert True\n")
    write(root, "vendor/dep.py", "def vendored():\n    pass\n")
    write(root, "toy/api_pb2.py", "def generated():\n    pass\n")
    write(root, "web/app.js", "export function f() { return 1; }\n")
    write(root, "web/bad.js", "function f( { return 1 }\n")
    write(root, "toy/blob.py", b"\x00\x01binary")
    write(root, "toy/huge.py", "x = 1\n" * 200)
    write(root, "README.md", "# toy\n")
    write(root, "node_modules/pkg/index.js", "function nm() {}\n")
    write(root, ".venv/lib/x.py", "def venv(): pass\n")
    return root


def test_scan_skips_binary_huge_and_broken_files_with_reasons(repo):
    scan = scan_repository(repo, CodeConfig(max_file_bytes=1000))
    reasons = {e["source_path"]: e["reason"] for e in scan.errors}
    assert set(reasons) == {"toyrepo/toy/broken.py", "toyrepo/web/bad.js", "toyrepo/toy/blob.py", "toyrepo/toy/huge.py"}
    assert reasons["toyrepo/toy/broken.py"].startswith("syntax error at line 1")
    assert reasons["toyrepo/web/bad.js"].startswith("syntax error at line 1")
    assert "binary" in reasons["toyrepo/toy/blob.py"]
    assert reasons["toyrepo/toy/huge.py"] == "too large: 1200 bytes > code.max_file_bytes 1000"
    # the rest goes on: the good files of the same folders are read
    qualnames = {(u.path, u.qualname) for u in scan.units}
    assert ("toy/core.py", "add") in qualnames and ("web/app.js", "f") in qualnames
    assert ("tests/test_core.py", "test_add") in qualnames  # tests are in by default
    # vendored and generated are left out by default, and counted; node_modules and .venv are not walked
    paths = {u.path for u in scan.units}
    assert not paths & {"vendor/dep.py", "toy/api_pb2.py"}
    assert not any(p.startswith(("node_modules", ".venv")) for p in paths)
    assert scan.left_out["role vendored (code.include_vendored)"] == 1
    assert scan.left_out["role generated (code.include_generated)"] == 1
    assert scan.left_out["unsupported language"] == 2  # LICENSE, README.md
    assert scan.files_by_role == {"source": 2, "test": 1}
    assert scan.files_by_language == {"python": 2, "javascript": 1}
    # licence and roles on every unit; paths relative, the repository by its folder name
    assert scan.licence == "MIT" and {u.licence for u in scan.units} == {"MIT"}
    assert {u.repo for u in scan.units} == {"toyrepo"}
    assert not any(u.path.startswith("/") or str(repo) in u.path for u in scan.units)
    roles = {u.path: u.role for u in scan.units}
    assert roles["tests/test_core.py"] == "test" and roles["toy/core.py"] == "source"
    assert len({u.unit_id for u in scan.units}) == len(scan.units)


def test_scan_follows_the_role_switches(repo):
    scan = scan_repository(repo, CodeConfig(include_tests=False, include_vendored=True, include_generated=True))
    roles = {u.path: u.role for u in scan.units}
    assert roles["vendor/dep.py"] == "vendored" and roles["toy/api_pb2.py"] == "generated"
    assert "tests/test_core.py" not in roles and scan.left_out["role test (code.include_tests)"] == 1
    only_js = scan_repository(repo, CodeConfig(languages=["javascript"]))
    assert {u.language for u in only_js.units} == {"javascript"}


def test_licence_detection_by_text(tmp_path):
    assert licence_of_text(MIT_TEXT) == "MIT"
    assert licence_of_text("Apache License\n   Version 2.0, January 2004") == "Apache-2.0"
    bsd = "Redistribution and use in source and binary forms, with or without modification...\n"
    assert licence_of_text(bsd) == "BSD-2-Clause"
    assert licence_of_text(bsd + "3. Neither the name of the copyright holder nor ...") == "BSD-3-Clause"
    assert licence_of_text("GNU GENERAL PUBLIC LICENSE\n Version 3, 29 June 2007") == "GPL-3.0"
    assert licence_of_text("GNU LESSER GENERAL PUBLIC LICENSE\n Version 3, 29 June 2007") == "LGPL-3.0"
    assert licence_of_text("All rights reserved.") == "unknown"
    write(tmp_path / "r", "COPYING.txt", MIT_TEXT)
    write(tmp_path / "r", "m.py", "x = 1\n")
    assert {u.licence for u in scan_repository(tmp_path / "r", CodeConfig()).units} == {"MIT"}
    write(tmp_path / "n", "m.py", "x = 1\n")
    assert {u.licence for u in scan_repository(tmp_path / "n", CodeConfig()).units} == {"unknown"}
    write(tmp_path / "p", "pyproject.toml", '[project]\nname = "p"\nlicense = "Apache-2.0"\n')
    write(tmp_path / "p", "m.py", "x = 1\n")
    assert {u.licence for u in scan_repository(tmp_path / "p", CodeConfig()).units} == {"Apache-2.0"}


def test_exclude_patterns_leave_files_out(tmp_path):
    write(tmp_path / "r", "pkg/m.py", "def f():\n    return 1\n")
    write(tmp_path / "r", "examples/e.py", "def g():\n    return 2\n")
    scan = scan_repository(tmp_path / "r", CodeConfig(exclude=["examples/*"]))
    assert {u.path for u in scan.units} == {"pkg/m.py"}
    assert scan.left_out["excluded by code.exclude"] == 1


@pytest.mark.skipif(shutil.which("git") is None, reason="git not installed")
def test_git_repository_lists_files_through_git(tmp_path):
    root = tmp_path / "gitrepo"
    write(root, "kept.py", "x = 1\n")
    write(root, "ignored.py", "y = 2\n")
    write(root, ".gitignore", "ignored.py\n")
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    assert sorted(list_files(root)) == [".gitignore", "kept.py"]


runner = CliRunner()


def test_cli_ingest_as_code_writes_code_units(repo, tmp_path):
    ws = tmp_path / "work"
    res = runner.invoke(app, ["--workspace", str(ws), "ingest", "--as", "code", str(repo)], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    assert "code_units ->" in res.output and "broken.py" in res.output  # the errors are shown
    rows = pq.read_table(ws / "artifacts" / "code_units.parquet").to_pylist()
    by_name = {(r["path"], r["qualname"]): r for r in rows}
    add = by_name[("toy/core.py", "add")]
    assert add["kind"] == "function" and add["docstring"] == "Add." and add["licence"] == "MIT"
    assert add["repo"] == "toyrepo" and (add["line_start"], add["line_end"]) == (1, 3)
    assert {r["path"] for r in rows} == {"toy/core.py", "tests/test_core.py", "web/app.js", "toy/huge.py"}

    res = runner.invoke(app, ["--workspace", str(ws), "ingest", "--as", "code", str(tmp_path / "nowhere")])
    assert res.exit_code == 1
    assert "no such file or folder" in res.output and len(res.output.strip().splitlines()) == 1
