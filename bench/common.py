"""The timing discipline every benchmark shares, and the machine it ran on.

The machine is shared (other jobs run beside the benchmark), so no single timing means much:

* every figure is the **median** of several timed rounds, reported with its interquartile spread;
* the cases being compared are **interleaved**: each round times every case once, in an order that
  rotates from round to round, so a burst of load from elsewhere hits all of them alike;
* a case too fast to time alone is **repeated** inside one timing (``inner``, chosen so one timing
  lasts at least ``min_time``) and reported per call;
* cold command lines are timed as whole processes (``subprocess``), the same way; they read
  bytecode as an installed package does (:func:`cold_env`: every module compiled once, in an
  untimed first run, then read from its ``.pyc``);
* the figure reported is **CPU time** (``time.process_time``; for a child process, its user +
  system time): what the work costs on a core, whatever else the machine runs. Wall-clock time
  of the same rounds is recorded beside it (``wall`` in ``latest.json``). Every PyTorch run uses
  one thread, so its CPU time is its time on one core.
"""

from __future__ import annotations

import contextlib
import io
import math
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

__all__ = [
    "ROOT",
    "SPECS",
    "Budget",
    "Stat",
    "calibrate",
    "cold",
    "cold_env",
    "fmt_ratio",
    "fmt_time",
    "interleaved",
    "machine",
    "peak_allocated",
    "quiet",
    "time_once",
]

ROOT = Path(__file__).resolve().parent.parent
SPECS = ROOT / "specs"


@dataclass
class Stat:
    """Per-call wall times (seconds) of one case over its rounds."""

    name: str
    times: list[float] = field(default_factory=list)  # CPU seconds per call (see CLOCK)
    inner: int = 1  # calls per timing
    wall: list[float] = field(default_factory=list)  # wall-clock seconds per call, same rounds

    @property
    def median(self) -> float:
        return statistics.median(self.times)

    @property
    def min(self) -> float:
        return min(self.times)

    @property
    def q1(self) -> float:
        return _quantile(self.times, 0.25)

    @property
    def q3(self) -> float:
        return _quantile(self.times, 0.75)

    @property
    def spread(self) -> float:
        """The interquartile range relative to the median (0.1 = +-5% around it)."""
        return (self.q3 - self.q1) / self.median if self.median else 0.0

    @property
    def wall_median(self) -> float | None:
        return statistics.median(self.wall) if self.wall else None

    def as_dict(self) -> dict[str, Any]:
        return {"median": self.median, "min": self.min, "q1": self.q1, "q3": self.q3,
                "spread": self.spread, "rounds": len(self.times), "inner": self.inner,
                "wall_median": self.wall_median, "times": self.times, "wall": self.wall}


def _quantile(values: Sequence[float], q: float) -> float:
    """Linear-interpolation quantile (numpy's default), without numpy."""
    xs = sorted(values)
    if len(xs) == 1:
        return xs[0]
    pos = q * (len(xs) - 1)
    lo = math.floor(pos)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


def time_once(fn: Callable[[], Any], inner: int = 1) -> float:
    """CPU seconds per call of ``fn`` over ``inner`` back-to-back calls."""
    return time_both(fn, inner)[0]


def time_both(fn: Callable[[], Any], inner: int = 1) -> tuple[float, float]:
    """``(CPU seconds, wall seconds)`` per call of ``fn`` over ``inner`` back-to-back calls.

    CPU time is this process's (every thread's) time on a core, plus that of any child process it
    ran and waited for (Graphviz's ``dot``): on a shared machine it is what the call costs,
    whatever else runs; wall time also counts the waits for a core.
    """
    cpu, wall = time.process_time() + _children_cpu(), time.perf_counter()
    for _ in range(inner):
        fn()
    cpu = time.process_time() + _children_cpu() - cpu
    return cpu / inner, (time.perf_counter() - wall) / inner


def paired_ratio(a: Stat | dict[str, Any], b: Stat | dict[str, Any]) -> float:
    """The median over rounds of ``a``'s time / ``b``'s time in the same round.

    Both were timed back to back in every round (:func:`interleaved`), so a change of load
    between rounds cancels out; the median drops the rounds a burst hit on one side only.
    """
    ta = a.times if isinstance(a, Stat) else a["times"]
    tb = b.times if isinstance(b, Stat) else b["times"]
    return statistics.median(x / y for x, y in zip(ta, tb))


def calibrate(fn: Callable[[], Any], min_time: float, max_inner: int = 10_000) -> int:
    """How many calls make one timing last at least ``min_time`` (after one warm-up call)."""
    fn()
    once = time_once(fn)
    if once <= 0:
        return max_inner
    return max(1, min(max_inner, math.ceil(min_time / once)))


def interleaved(cases: Mapping[str, Callable[[], Any]], rounds: int, *, min_time: float = 0.0,
                warmup: int = 1, inner: Mapping[str, int] | None = None) -> dict[str, Stat]:
    """Time every case ``rounds`` times, interleaved, the order rotating each round.

    ``min_time`` > 0 calibrates ``inner`` per case (one warm-up call included); otherwise each
    case gets ``warmup`` untimed calls first. ``inner`` fixes the calls per timing by case.
    """
    names = list(cases)
    inner = dict(inner or {})
    for name in names:
        if name in inner:
            for _ in range(warmup):
                cases[name]()
        elif min_time > 0:
            inner[name] = calibrate(cases[name], min_time)
        else:
            for _ in range(warmup):
                cases[name]()
            inner[name] = 1
    stats = {name: Stat(name, inner=inner[name]) for name in names}
    for r in range(rounds):
        shift = r % len(names)
        for name in names[shift:] + names[:shift]:
            cpu, wall = time_both(cases[name], inner[name])
            stats[name].times.append(cpu)
            stats[name].wall.append(wall)
    return stats


@contextlib.contextmanager
def cold_env() -> Iterator[dict[str, str | None]]:
    """The environment of cold processes that read bytecode the way an installed package does.

    pip compiles a package's modules when it installs them, so a user's ``archdsl`` reads ``.pyc``
    files; a checkout run with ``PYTHONDONTWRITEBYTECODE`` set (as here) compiles archdsl's
    source in every process instead, while torch reads the bytecode pip wrote. Here every module,
    archdsl's and torch's alike, reads its bytecode from a fresh ``PYTHONPYCACHEPREFIX``
    directory, written by the first (untimed: ``cold(..., warmup=1)``) run. The mapping overlays
    ``os.environ`` in :func:`cold` (``None`` unsets a variable).
    """
    with tempfile.TemporaryDirectory(prefix="archdsl-bench-pycache-") as prefix:
        yield {"PYTHONPYCACHEPREFIX": prefix, "PYTHONDONTWRITEBYTECODE": None}


NO_BYTECODE_ENV: dict[str, str | None] = {"PYTHONDONTWRITEBYTECODE": "1", "PYTHONPYCACHEPREFIX": None}
"""The method before :func:`cold_env`: no bytecode written, so archdsl's checkout (which has
none) is compiled from source in every process, while torch reads the bytecode pip installed."""


def cold(commands: Mapping[str, Sequence[str]], rounds: int | Mapping[str, int], *, cwd: Path = ROOT,
         env: Mapping[str, str | None] | None = None, warmup: int = 0) -> dict[str, Stat]:
    """CPU (and wall) time of whole processes, interleaved like :func:`interleaved`; each must
    exit 0.

    ``rounds`` may differ by command (a mapping): a command with fewer rounds takes part in the
    first ones only. ``env`` overlays ``os.environ`` (a ``None`` value unsets the variable);
    each command first runs ``warmup`` times untimed (to write its bytecode: :func:`cold_env`).
    """
    names = list(commands)
    per = {name: rounds for name in names} if isinstance(rounds, int) else dict(rounds)
    stats = {name: Stat(name) for name in names}
    run_env = {**os.environ, **(env or {})}
    run_env = {key: value for key, value in run_env.items() if value is not None}

    def run(name: str) -> None:
        proc = subprocess.run(list(commands[name]), cwd=cwd, env=run_env, capture_output=True,
                              check=False)
        if proc.returncode != 0:
            raise RuntimeError(f"{name}: {' '.join(commands[name])} exited {proc.returncode}:\n"
                               + proc.stderr.decode("utf-8", "replace")[-2000:])

    for name in names:
        for _ in range(warmup):
            run(name)
    for r in range(max(per.values())):
        shift = r % len(names)
        for name in names[shift:] + names[:shift]:
            if r >= per[name]:
                continue
            before = _children_cpu()
            start = time.perf_counter()
            run(name)
            stats[name].wall.append(time.perf_counter() - start)
            stats[name].times.append(_children_cpu() - before)
    return stats


def _children_cpu() -> float:
    """User + system CPU seconds of every finished child process so far."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def peak_allocated(fn: Callable[[], Any]) -> tuple[int, Any]:
    """Peak bytes Python allocated while ``fn`` ran (tracemalloc), and its result.

    tracemalloc slows Python down several times: never time a function while tracing it.
    """
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        base, _ = tracemalloc.get_traced_memory()
        result = fn()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak - base, result


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """Swallow what a peer tool prints (tables, warnings) to stdout and stderr."""
    import warnings

    sink = io.StringIO()
    with warnings.catch_warnings(), contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
        warnings.simplefilter("ignore")
        yield


class Budget:
    """A wall-clock allowance for an optional section: ``left()`` seconds remain."""

    def __init__(self, seconds: float):
        self.seconds = seconds
        self.start = time.perf_counter()

    def left(self) -> float:
        return self.seconds - (time.perf_counter() - self.start)


# --- the machine -----------------------------------------------------------------------------

def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _memory_gb() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    return None


def _version(package: str) -> str | None:
    from importlib import metadata

    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def _git() -> str | None:
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                              text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT,
                               capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None
    return head + ("+uncommitted changes" if dirty else "")


def load_average() -> tuple[float, float, float] | None:
    try:
        return os.getloadavg()
    except OSError:
        return None


def machine() -> dict[str, Any]:
    """What the numbers were measured on (recorded with every run)."""
    return {
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "cores_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "memory_gb": _memory_gb(),
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "executable": sys.executable,
        "git": _git(),
        "load_average_start": load_average(),
        "versions": {p: _version(p) for p in ("archdsl", "torch", "torchvision", "fvcore", "ptflops",
                                              "thop", "torchinfo", "timm", "pyyaml", "networkx")},
    }


# --- formatting --------------------------------------------------------------------------------

def fmt_time(seconds: float | None) -> str:
    """``0.00123`` -> ``1.23 ms``."""
    if seconds is None or (isinstance(seconds, float) and math.isnan(seconds)):
        return "-"
    if seconds >= 1:
        return f"{seconds:.2f} s"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.3g} ms"
    return f"{seconds * 1e6:.3g} us"


def fmt_ratio(ratio: float | None) -> str:
    if ratio is None or (isinstance(ratio, float) and math.isnan(ratio)):
        return "-"
    if ratio >= 100:
        return f"{ratio:,.0f}x"
    if ratio >= 10:
        return f"{ratio:.1f}x"
    return f"{ratio:.2f}x"


def as_plain(obj: Any) -> Any:
    """Dataclasses and Stats to JSON-ready values."""
    if isinstance(obj, Stat):
        return obj.as_dict()
    if hasattr(obj, "__dataclass_fields__"):
        return as_plain(asdict(obj))
    if isinstance(obj, dict):
        return {str(k): as_plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [as_plain(v) for v in obj]
    if isinstance(obj, float) and math.isfinite(obj):
        return float(f"{obj:.6g}")  # timings are not that precise; keeps latest.json small
    return obj
