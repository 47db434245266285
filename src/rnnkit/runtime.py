"""Process-wide CPU settings rnnkit applies itself: glibc malloc's thresholds, OpenMP's wait policy and
the number of torch threads.

Why each (measured on a shared 2-core CPU, benchmarks/RESULTS.md "CPU runtime"):

* glibc's malloc hands every block over its mmap threshold (128 KiB at first) straight to the kernel
  and gives freed memory back at once, so the short-lived activation and gradient tensors of each
  step are mapped, page-faulted and unmapped again and again (9 of 21 s of a seed-002 run were system
  time). Raising the thresholds keeps that memory in the process for reuse.
* OpenMP threads spin while they wait for work; with another busy process on the machine they burn
  the core that the thread holding everyone up needs (2 threads ran 2-25x slower than 1).
  ``OMP_WAIT_POLICY=PASSIVE`` makes them sleep instead; libgomp reads it once, when torch loads it.
* More threads than free cores only adds waiting: the default thread count is the cores that are
  free when the run starts.

Importing :mod:`rnnkit` calls :func:`configure_process`, before torch is imported where it can.
Opt out with ``RNNKIT_MALLOC=0`` (keep glibc's defaults); set ``OMP_WAIT_POLICY`` yourself to choose
the wait policy; ``--threads N`` / ``train.threads`` choose the thread count.
"""

from __future__ import annotations

import ctypes
import os
import sys
import time

ALLOCATOR_ENV = "RNNKIT_MALLOC"  # "0": leave glibc malloc's settings alone
# glibc's mallopt parameters (malloc.h)
_M_TRIM_THRESHOLD, _M_TOP_PAD, _M_MMAP_THRESHOLD = -1, -2, -3
_MMAP_THRESHOLD = 32 * 2**20  # glibc's ceiling for this setting on 64-bit; larger blocks are still mapped
_TRIM_THRESHOLD = 512 * 2**20  # free memory kept at the top of the heap before it goes back to the kernel
_TOP_PAD = 64 * 2**20  # grow the heap in steps this big, not page by page
# glibc's own variables for the same settings: when the user set any, theirs win
_GLIBC_MALLOC_ENV = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "MALLOC_TOP_PAD_", "GLIBC_TUNABLES")

_sample_at_import: tuple[float, float, list[int]] | None = None  # (wall, own CPU, /proc/stat) at import


def configure_process() -> None:
    """Allocator thresholds and OpenMP's passive waiting, as early as possible (both are no-ops where
    they do not apply or the user chose otherwise); also the first reading for :func:`free_cores`."""
    global _sample_at_import
    tune_allocator()
    if "torch" not in sys.modules:  # libgomp reads it when torch loads it; later it changes nothing
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    _sample_at_import = _cpu_sample()


def tune_allocator() -> bool:
    """Raise glibc malloc's mmap / trim thresholds and top pad; True when applied.

    A no-op without glibc (macOS, musl, Windows), with ``RNNKIT_MALLOC=0``, or when the user set
    glibc's own ``MALLOC_*_`` / ``GLIBC_TUNABLES`` variables.
    """
    if os.environ.get(ALLOCATOR_ENV, "1").strip().lower() in ("0", "false", "no", "off"):
        return False
    if any(name in os.environ for name in _GLIBC_MALLOC_ENV) or not glibc_version():
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    return all(mallopt(param, value) == 1 for param, value in (
        (_M_MMAP_THRESHOLD, _MMAP_THRESHOLD), (_M_TRIM_THRESHOLD, _TRIM_THRESHOLD), (_M_TOP_PAD, _TOP_PAD)))


def glibc_version() -> str | None:
    """'2.36' under glibc, else None."""
    try:
        name = os.confstr("CS_GNU_LIBC_VERSION") or ""
    except (ValueError, OSError, AttributeError):
        return None
    return name.split()[-1] if name.startswith("glibc") else None


def usable_cores() -> int:
    """Cores this process may run on (its affinity mask; the CPU count where that is unknown)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def free_cores() -> int:
    """Usable cores minus those other processes kept busy since rnnkit was imported (at least 1).

    Reads /proc/stat at import and now (at least 0.1 s apart) and subtracts this process's own CPU time,
    so the start-up work of this run (importing torch, reading data) does not count as load. Where
    /proc/stat is missing, all usable cores.
    """
    start = _sample_at_import
    if start is None or time.perf_counter() - start[0] < 0.1:  # /proc/stat counts in 10 ms ticks
        start = _cpu_sample()
        time.sleep(0.1)
    end = _cpu_sample()
    if start is None or end is None:
        return usable_cores()
    (wall0, own0, stat0), (wall1, own1, stat1) = start, end
    busy, total = sum(_busy(stat1)) - sum(_busy(stat0)), sum(stat1) - sum(stat0)
    if total <= 0:
        return usable_cores()
    cores = os.cpu_count() or 1
    others = busy / total * cores - (own1 - own0) / max(wall1 - wall0, 1e-9)
    return max(1, min(usable_cores(), round(cores - max(others, 0.0))))


def _busy(stat: list[int]) -> list[int]:
    """/proc/stat's busy fields: user, nice, system, irq, softirq, steal (not idle, iowait)."""
    return [v for i, v in enumerate(stat[:8]) if i not in (3, 4)]


def _cpu_sample() -> tuple[float, float, list[int]] | None:
    try:
        with open("/proc/stat", encoding="ascii") as f:
            fields = f.readline().split()
    except OSError:
        return None
    if not fields or fields[0] != "cpu":
        return None
    return time.perf_counter(), time.process_time(), [int(v) for v in fields[1:9]]


def choose_threads(requested: int = 0) -> tuple[int, str]:
    """torch's CPU thread count for a run and why: ``requested`` when > 0, else ``OMP_NUM_THREADS``
    when set (by the user, or by torchrun for each of its processes), else the free cores."""
    if requested > 0:
        return requested, "asked for"
    from_env = os.environ.get("OMP_NUM_THREADS", "").strip()
    if from_env.isdigit() and int(from_env) > 0:
        return int(from_env), "OMP_NUM_THREADS"
    free, usable = free_cores(), usable_cores()
    return free, f"{free} of {usable} cores free" if free < usable else "all cores free"


def set_threads(requested: int = 0) -> str:
    """Apply :func:`choose_threads` to torch; returns the phrase a run logs, e.g. '1 thread (1 of 2 cores free)'."""
    import torch

    threads, why = choose_threads(requested)
    torch.set_num_threads(threads)
    return f"{threads} thread{'s' if threads != 1 else ''} ({why})"
