"""The machine a benchmark ran on: one record with the same keys in every result file."""

from __future__ import annotations

import os
import platform
import time
from pathlib import Path

import torch


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo where there is one."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def machine(versions: dict[str, str] | None = None, device: str | None = None) -> dict:
    """`platform`, `python`, `cpu`, `cpu_count`, `torch_threads`, `torch`, `gpu` (the CUDA
    device's name when `device` is "cuda", or when `device` is None and one is present),
    `date` and `load_average` (1 minute, now), plus the version of each module of
    `versions` ({key: module name}; None when it is not installed)."""
    use_gpu = torch.cuda.is_available() if device is None else device == "cuda"
    info = {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpu": cpu_model(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "gpu": torch.cuda.get_device_name() if use_gpu else None,
        "date": time.strftime("%Y-%m-%d"),
        "load_average": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
    }
    for key, module in (versions or {}).items():
        try:
            info[key] = getattr(__import__(module), "__version__", "installed")
        except ImportError:
            info[key] = None
    return info


def write_atomic(path: Path, text: str) -> None:
    """Write `text` to `path` through a temporary file and a rename: a benchmark that is
    stopped while it writes leaves the previous version of the file, never half of one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


class Budget:
    """A benchmark's time budget: `spent()` once `seconds` have passed since it was made
    (never when `seconds` is None). A benchmark checks it before each size or row and
    stops there, with what it has measured already written, instead of being killed in
    the middle of a measurement; `stop(what)` records where (`stopped`, the first time)."""

    def __init__(self, seconds: float | None) -> None:
        self.seconds = seconds
        self.start = time.monotonic()
        self.stopped: str | None = None

    def elapsed(self) -> float:
        return time.monotonic() - self.start

    def spent(self) -> bool:
        return self.seconds is not None and self.elapsed() >= self.seconds

    def stop(self, what: str) -> str:
        """Record, once, that the budget ran out before `what`; return the record."""
        if self.stopped is None:
            self.stopped = (f"time budget of {self.seconds:g} s spent after "
                            f"{self.elapsed():.0f} s: stopped before {what}")
            print(self.stopped, flush=True)
        return self.stopped
