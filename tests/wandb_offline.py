"""Read an offline W&B run (``run-*.wandb``) back: config, history rows, summary.

Offline runs keep everything in one append-only file (LevelDB log framing,
one protobuf ``Record`` per entry) and no JSON copies, and wandb ships no
Python reader for it. This small reader lets the tests prove what was logged
(a test helper, not part of the installed library).
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass, field
from pathlib import Path

_HEADER = b":W&B" + struct.pack("<HB", 0xBEE1, 0)
_BLOCK = 32768
_FULL, _FIRST, _MIDDLE, _LAST = 1, 2, 3, 4


@dataclass
class OfflineRun:
    config: dict = field(default_factory=dict)
    history: list[dict] = field(default_factory=list)
    summary: dict = field(default_factory=dict)
    group: str = ""
    name: str = ""
    tags: list[str] = field(default_factory=list)


def _payloads(data: bytes):
    """Yield each record's bytes, reassembling records split across 32 KiB blocks."""
    if not data.startswith(_HEADER):
        raise ValueError("not a W&B run file (bad header)")
    pos, parts = len(_HEADER), []
    while pos + 7 <= len(data):
        left_in_block = _BLOCK - pos % _BLOCK
        if left_in_block < 7:  # block trailer: zero padding
            pos += left_in_block
            continue
        length, kind = struct.unpack_from("<HB", data, pos + 4)
        body = data[pos + 7 : pos + 7 + length]
        pos += 7 + length
        if kind == _FULL:
            yield body
        elif kind == _FIRST:
            parts = [body]
        elif kind == _MIDDLE:
            parts.append(body)
        elif kind == _LAST:
            parts.append(body)
            yield b"".join(parts)
            parts = []
        else:  # zero-filled tail of a preallocated block
            break


def _key(item) -> str:
    return "/".join(item.nested_key) if item.nested_key else item.key


def read_offline_run(path: str | Path) -> OfflineRun:
    """Parse ``path`` (a ``run-*.wandb`` file or the ``offline-run-*`` folder holding it)."""
    from wandb.proto import wandb_internal_pb2 as pb

    path = Path(path)
    if path.is_dir():
        files = sorted(path.glob("run-*.wandb"))
        if not files:
            raise FileNotFoundError(f"no run-*.wandb file in {path}")
        path = files[0]
    run = OfflineRun()
    for payload in _payloads(path.read_bytes()):
        record = pb.Record()
        record.ParseFromString(payload)
        kind = record.WhichOneof("record_type")
        if kind == "run":
            run.group, run.name = record.run.run_group, record.run.display_name
            run.tags = list(record.run.tags)
            for item in record.run.config.update:
                run.config[_key(item)] = json.loads(item.value_json)
        elif kind == "config":
            for item in record.config.update:
                run.config[_key(item)] = json.loads(item.value_json)
        elif kind == "history":
            run.history.append({_key(i): json.loads(i.value_json) for i in record.history.item})
        elif kind == "summary":
            for item in record.summary.update:
                run.summary[_key(item)] = json.loads(item.value_json)
    return run
