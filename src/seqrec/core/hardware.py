"""The device a run uses and the line that records what it ran on."""

from __future__ import annotations

import platform

import torch


def hardware(device: torch.device, precision: str, processes: int = 1) -> str:
    """What a run ran on, for its ``run.json`` (``NVIDIA H200, bf16-mixed`` / ``CPU <model>, 2 threads, 32-true``)."""
    if device.type == "cuda":
        what = torch.cuda.get_device_name(device)
    else:
        name = platform.processor() or platform.machine()
        try:
            with open("/proc/cpuinfo", encoding="utf-8") as info:
                name = next((line.split(":", 1)[1].strip() for line in info if line.startswith("model name")), name)
        except OSError:
            pass
        threads = torch.get_num_threads()
        what = f"CPU {name}, {threads} thread{'s' if threads != 1 else ''}"
    return f"{what}{f' x {processes} processes' if processes > 1 else ''}, {precision}"


def device(name: str | None) -> torch.device:
    """``auto`` / None: CUDA when available, else the CPU; otherwise the named device."""
    if name in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)
