"""What every benchmark result records about where it ran: CPU/GPU, torch, date, load."""

from __future__ import annotations

import os
import platform
from datetime import datetime, timezone
from pathlib import Path


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def describe_machine(torch) -> dict:
    """CPU model and cores (and the GPU when there is one), torch version, UTC date, load average."""
    machine = f"{cpu_name()}, {os.cpu_count()} cores, {torch.get_num_threads()} torch threads"
    if torch.cuda.is_available():
        machine += f"; GPU {torch.cuda.get_device_name(0)}"
    return {"machine": machine, "torch": torch.__version__,
            "date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "load_average": os.getloadavg()}


def provenance(command: str, meta: dict) -> list[str]:
    """The two lines every results file starts with: how to reproduce it, and where it ran."""
    return [
        f"Command: `{command}`  ",
        f"Machine: {meta['machine']}; torch {meta['torch']}; {meta['date']}; "
        f"load average before: {meta['load_average'][0]:.2f} (shared machine).",
    ]
