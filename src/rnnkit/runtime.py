"""Process-wide CPU settings rnnkit applies itself: glibc malloc's thresholds, OpenMP's wait policy and
the number of torch threads.

Why each (measured on a shared 2-core CPU, benchmarks/RESULTS.md "CPU runtime"):

* glibc's malloc hands every block over its mmap threshold (128 KiB at first) straight to the kernel
  and gives freed memory back at once, so the short-lived activation and gradient tensors of each
  step are mapped, page-faulted and unmapped again and again (issue 12: 9 of 21 s of a seed-002 run were
  system time). Raising the thresholds keeps that memory in the process for reuse.
* OpenMP threads spin while they wait for work; with another busy process on the machine they burn
  the core that the thread holding everyone up needs (issue 12: 2 threads ran 2-25x slower than 1).
  ``OMP_WAIT_POLICY=PASSIVE`` makes them sleep instead; libgomp reads it once, when torch loads it.
* With passive waiting, a thread that has to wait for a busy core costs little: the default thread
  count is every usable core (``OMP_NUM_THREADS`` when set).

Importing :mod:`rnnkit` calls :func:`configure_process`, before torch is imported where it can.
Opt out with ``RNNKIT_MALLOC=0`` (keep glibc's defaults); set ``OMP_WAIT_POLICY`` yourself to choose
the wait policy; ``--threads N`` / ``train.threads`` choose the thread count.
"""

from __future__ import annotations

import ctypes
import os
import sys

ALLOCATOR_ENV = "RNNKIT_MALLOC"  # "0": leave glibc malloc's settings alone
# glibc's mallopt parameters (malloc.h)
_M_TRIM_THRESHOLD, _M_TOP_PAD, _M_MMAP_THRESHOLD = -1, -2, -3
_MMAP_THRESHOLD = 32 * 2**20  # glibc's ceiling for this setting on 64-bit; larger blocks are still mapped
_TRIM_THRESHOLD = 512 * 2**20  # free memory kept at the top of the heap before it goes back to the kernel
_TOP_PAD = 64 * 2**20  # grow the heap in steps this big, not page by page
# glibc's own variables for the same settings: when the user set any, theirs win
_GLIBC_MALLOC_ENV = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "MALLOC_TOP_PAD_", "GLIBC_TUNABLES")


def configure_process() -> None:
    """Allocator thresholds and OpenMP's passive waiting, as early as possible (both are no-ops where
    they do not apply or the user chose otherwise)."""
    tune_allocator()
    if "torch" not in sys.modules:  # libgomp reads it when torch loads it; later it changes nothing
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


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


def choose_threads(requested: int = 0) -> tuple[int, str]:
    """torch's CPU thread count for a run and why: ``requested`` when > 0, else ``OMP_NUM_THREADS``
    when set (by the user, or by torchrun for each of its processes), else every usable core.

    Every core even on a busy machine: with passive waiting two threads matched or beat one on 2 cores
    while other processes kept 0.7-1.5 cores busy (the scheduler shares the CPU per thread); counting
    only the cores left free picked one thread and ran up to 1.4x slower (benchmarks/RESULTS.md).
    """
    if requested > 0:
        return requested, "asked for"
    from_env = os.environ.get("OMP_NUM_THREADS", "").strip()
    if from_env.isdigit() and int(from_env) > 0:
        return int(from_env), "OMP_NUM_THREADS"
    cores = usable_cores()
    return cores, f"all {cores} cores"


def set_threads(requested: int = 0) -> str:
    """Apply :func:`choose_threads` to torch; returns the phrase a run logs, e.g. '2 threads (all 2 cores)'."""
    import torch

    threads, why = choose_threads(requested)
    torch.set_num_threads(threads)
    return f"{threads} thread{'s' if threads != 1 else ''} ({why})"
