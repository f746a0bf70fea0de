"""Read a W&B run's transaction log (``run-<id>.wandb``): the records an offline run would upload.

The file is a LevelDB-style log (wandb's ``datastore`` format): a 7-byte header ``:W&B`` + magic + version, then
32 KiB blocks of chunks, each ``crc32 (4) | length (2) | type (1) | payload``; a record is one FULL chunk or a
FIRST, MIDDLE..., LAST sequence. Each record is a ``wandb_internal_pb2.Record`` protobuf.
"""

from __future__ import annotations

import json
import struct
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

BLOCK = 32 * 1024
CHUNK_HEADER = 7
FULL, FIRST, MIDDLE, LAST = 1, 2, 3, 4


def records(path: Path) -> Iterator[Any]:
    from wandb.proto import wandb_internal_pb2

    data = path.read_bytes()
    if data[:4] != b":W&B":
        raise ValueError(f"{path}: not a W&B transaction log")
    pos, parts = 7, b""
    while pos + CHUNK_HEADER <= len(data):
        left = BLOCK - pos % BLOCK
        if left < CHUNK_HEADER:  # block trailer padding
            pos += left
            continue
        _crc, length, kind = struct.unpack("<IHB", data[pos : pos + CHUNK_HEADER])
        if kind == 0:  # zero padding up to the end of the block
            pos += left
            continue
        payload = data[pos + CHUNK_HEADER : pos + CHUNK_HEADER + length]
        pos += CHUNK_HEADER + length
        if kind in (FULL, FIRST):
            parts = payload
        else:
            parts += payload
        if kind in (FULL, LAST):
            record = wandb_internal_pb2.Record()
            record.ParseFromString(parts)
            yield record


def history(path: Path) -> list[dict[str, Any]]:
    """Every ``run.log`` row, values decoded from JSON."""
    rows = []
    for record in records(path):
        if record.WhichOneof("record_type") == "history":
            rows.append(
                {item.key or "/".join(item.nested_key): json.loads(item.value_json) for item in record.history.item}
            )
    return rows


def run_record(path: Path) -> Any:
    """The run record: id, project, display name, config."""
    return next(r.run for r in records(path) if r.WhichOneof("record_type") == "run")


def summary(path: Path) -> dict[str, Any]:
    """The summary as it stands at the end of the log."""
    out: dict[str, Any] = {}
    for record in records(path):
        if record.WhichOneof("record_type") == "summary":
            for item in record.summary.update:
                out[item.key or "/".join(item.nested_key)] = json.loads(item.value_json)
    return out


def wait_until_closed(path: Path, timeout_s: float = 30.0) -> Path:
    """Wait for the run's ``exit`` record: W&B's service process finishes writing the log after ``finish()``
    returns, so a test that reads it at once may see it cut short."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            if any(r.WhichOneof("record_type") == "exit" for r in records(path)):
                return path
        except Exception:  # a record being written: read again
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"{path} has no exit record after {timeout_s:.0f} s")
        time.sleep(0.1)
