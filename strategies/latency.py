"""Latency as a search cost (``search.goal.cost latency``): a lookup table of onnxruntime latencies,
as ProxylessNAS and FBNet build one for their target device.

The deploy runtime is onnxruntime on the CPU, one thread (``trainers.deploy.infer``'s runtime). A
network is split into *units*: the largest modules (below the network itself) that take one
tensor and return one tensor — a candidate operation, a cell's route, an HRNet branch, the stem.
Each unit is exported alone to ONNX and timed at its input shape (batch 1) once; the table keys
it by its class, its input shape and a digest of its definition (``repr``), so any network that
holds the same unit reuses the entry. The per-call overhead of a session (timed on an identity
graph) is taken off every entry.

What the units leave out — additions, resampling and concatenations between them, and the
fusion onnxruntime does across unit borders — is a scale: the table times a few whole frozen
networks of the space (``CALIBRATION_NETWORKS`` random architectures) and multiplies the sum of
the units by Σ measured / Σ summed over them. :meth:`LatencyTable.predict` is that product.

The table is a JSON file beside the run (``search.goal.latency_table``), written atomically after each
batch of measurements and valid for one machine, onnxruntime version, thread count and input
size: any other is measured anew.
"""
from __future__ import annotations

import contextlib
import copy
import hashlib
import io
import json
import logging
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Sequence

import numpy as np
import torch
from torch import nn

from search_space.supernet import build
from trainers.atomic import atomic_path
from trainers.network.build import build_network, spec_from_choices
from trainers.config.schema import Config
from search_space.errors import UserInputError
from trainers.deploy.onnx_graph import export_onnx

__all__ = ["LatencyTable", "runtime_signature", "tensor_units", "random_networks",
           "space_latency_table", "latency_table_path", "CALIBRATION_NETWORKS", "cpu_name",
           "cpu_cores"]

logger = logging.getLogger(__name__)

#: random frozen architectures timed whole to set the table's scale
CALIBRATION_NETWORKS = 3
_FORMAT = 1


def cpu_name() -> str:
    """The CPU's model name (/proc/cpuinfo; else the platform's)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def runtime_signature(threads: int = 1) -> dict[str, Any]:
    """What the entries are valid for: the CPU, onnxruntime's version and the thread count."""
    import onnxruntime as ort  # the deploy runtime: only latency tables need it

    return {"cpu": cpu_name(), "cores": cpu_cores(), "onnxruntime": ort.__version__,
            "threads": threads}


def cpu_cores() -> int:
    """The cores this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def tensor_units(network: nn.Module, input_size: Sequence[int]
                 ) -> list[tuple[str, nn.Module, tuple[int, ...]]]:
    """The units of ``network`` at a (1, 3, H, W) input: ``(name, module, input shape)`` per call
    of each largest tensor → tensor module below the root, in call order."""
    calls: dict[str, list[tuple[int, ...] | None]] = {}
    order: list[tuple[str, tuple[int, ...] | None]] = []
    handles = []

    def hook(name: str):
        def record(module: nn.Module, args: tuple, kwargs: dict, output: Any) -> None:
            ok = (len(args) == 1 and not kwargs and isinstance(args[0], torch.Tensor)
                  and isinstance(output, torch.Tensor))
            shape = tuple(args[0].shape) if ok else None
            calls.setdefault(name, []).append(shape)
            order.append((name, shape))
        return record

    modules = dict(network.named_modules())
    for name, module in modules.items():
        if name:
            handles.append(module.register_forward_hook(hook(name), with_kwargs=True))
    param = next(network.parameters(), None)
    was_training = network.training
    network.eval()
    try:
        with torch.no_grad():
            network(torch.zeros(1, 3, *input_size, device=param.device if param is not None else "cpu"))
    finally:
        for h in handles:
            h.remove()
        network.train(was_training)
    simple = {name for name, shapes in calls.items() if all(s is not None for s in shapes)}

    def inside_unit(name: str) -> bool:
        parts = name.split(".")
        return any(".".join(parts[:i]) in simple for i in range(1, len(parts)))

    return [(name, modules[name], shape) for name, shape in order
            if name in simple and not inside_unit(name)]  # type: ignore[misc]


@contextlib.contextmanager
def _silenced() -> Iterator[None]:
    """stdout and stderr (file descriptors too) to /dev/null: the exporters print graph dumps
    and banners from C++ when the TorchScript exporter falls back to torch.export."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    null = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(null, 1)
        os.dup2(null, 2)
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            yield
    finally:
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in (*saved, null):
            os.close(fd)


def _onnx_bytes(module: nn.Module, shape: Sequence[int]) -> bytes:
    """``module`` as the ONNX model ``trainers.deploy.export`` would write (same exporter and fallback)."""
    with tempfile.TemporaryDirectory() as tmp, _silenced():
        path = Path(tmp) / "unit.onnx"
        export_onnx(module, path, tuple(shape[2:]), channels=int(shape[1]))
        return path.read_bytes()


class _Timer:
    """onnxruntime sessions at a fixed thread count, timed by the median of repeated runs."""

    def __init__(self, threads: int, min_seconds: float, min_runs: int) -> None:
        import onnxruntime as ort  # see runtime_signature

        self.ort = ort
        self.threads = threads
        self.min_seconds = min_seconds
        self.min_runs = min_runs

    def session(self, model: bytes) -> Any:
        opts = self.ort.SessionOptions()
        opts.intra_op_num_threads = self.threads
        opts.inter_op_num_threads = 1
        opts.graph_optimization_level = self.ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.log_severity_level = 3
        return self.ort.InferenceSession(model, opts, providers=["CPUExecutionProvider"])

    def ms(self, model: bytes, shape: Sequence[int]) -> float:
        """Median milliseconds of one run of ``model`` on a (random) input of ``shape``."""
        session = self.session(model)
        name = session.get_inputs()[0].name
        feed = {name: np.random.default_rng(0).standard_normal(shape).astype(np.float32)}
        for _ in range(3):
            session.run(None, feed)
        times: list[float] = []
        start = time.perf_counter()
        while len(times) < self.min_runs or time.perf_counter() - start < self.min_seconds:
            t0 = time.perf_counter()
            session.run(None, feed)
            times.append(time.perf_counter() - t0)
        return statistics.median(times) * 1e3


class _Copy(nn.Module):
    """An identity graph with one node (an empty graph is not a valid ONNX model)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + 0


def _digest(module: nn.Module) -> str:
    return hashlib.sha1(repr(module).encode()).hexdigest()[:16]


class LatencyTable:
    """onnxruntime latencies of units (see the module docstring), cached in ``path``.

    Args:
        path: the JSON file (read if valid for this machine and ``input_size``; "" or None: kept
            in memory).
        input_size: (H, W) of the networks' input.
        threads: onnxruntime's intra-op threads (1: the issue's deploy setting).
        min_seconds, min_runs: how long each entry is timed (the median run counts).
    """

    def __init__(self, path: str | Path | None, input_size: Sequence[int], threads: int = 1,
                 min_seconds: float = 0.05, min_runs: int = 10) -> None:
        self.path = Path(path) if path else None
        self.input_size = [int(v) for v in input_size]
        self.runtime = runtime_signature(threads)
        self.timer = _Timer(threads, min_seconds, min_runs)
        self.entries: dict[str, dict[str, Any]] = {}
        self.calibration: dict[str, Any] = {}
        self.overhead_ms: float | None = None
        self.measured = 0  # entries timed by this object (not read from the file)
        if self.path is not None and self.path.is_file():
            self._read(self.path)

    # ------------------------------------------------------------------ file
    def _read(self, path: Path) -> None:
        try:
            data = json.loads(path.read_text())
            valid = (data.get("format") == _FORMAT and data.get("runtime") == self.runtime
                     and data.get("input_size") == self.input_size)
        except (OSError, ValueError, AttributeError) as err:
            logger.warning("latency table %s unreadable (%s): measuring anew", path, err)
            return
        if not valid:
            logger.info(f"latency table {path}: measured for another machine, runtime or input size; "
                        "measuring anew")
            return
        self.entries = dict(data.get("entries", {}))
        self.calibration = dict(data.get("calibration", {}))
        self.overhead_ms = data.get("overhead_ms")

    def save(self) -> None:
        """Write the table (atomically) if it has a path."""
        if self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        data = {"format": _FORMAT, "runtime": self.runtime, "input_size": self.input_size,
                "overhead_ms": self.overhead_ms, "calibration": self.calibration,
                "entries": self.entries}
        with atomic_path(self.path, suffix=".json") as tmp:
            Path(tmp).write_text(json.dumps(data, indent=1, sort_keys=True))

    # ------------------------------------------------------------------ entries
    def _overhead(self) -> float:
        """The per-call cost of a session: an identity graph on a tiny input."""
        if self.overhead_ms is None:
            shape = (1, 1, 1, 1)
            self.overhead_ms = self.timer.ms(_onnx_bytes(_Copy(), shape), shape)
        return self.overhead_ms

    def module_ms(self, module: nn.Module, shape: Sequence[int]) -> float:
        """The latency (ms, overhead taken off) of ``module`` alone at input ``shape``."""
        shape = tuple(int(v) for v in shape)
        key = f"{type(module).__name__}/{'x'.join(map(str, shape))}/{_digest(module)}"
        entry = self.entries.get(key)
        if entry is None:
            unit = copy.deepcopy(module).cpu().float().eval()
            ms = self.timer.ms(_onnx_bytes(unit, shape), shape)
            entry = {"ms": max(ms - self._overhead(), 0.0)}
            self.entries[key] = entry
            self.measured += 1
        return float(entry["ms"])

    def summed_ms(self, network: nn.Module) -> float:
        """Σ of the table's entries over the units of ``network`` (uncalibrated)."""
        return sum(self.module_ms(m, shape) for _, m, shape in
                   tensor_units(network, self.input_size))

    def network_ms(self, network: nn.Module) -> float:
        """``network`` timed whole (ms per 1×3×H×W input)."""
        shape = (1, 3, *self.input_size)
        net = copy.deepcopy(network).cpu().float().eval()
        return self.timer.ms(_onnx_bytes(net, shape), shape)

    # ------------------------------------------------------------------ prediction
    @property
    def calibrated(self) -> bool:
        return "scale" in self.calibration

    def calibrate(self, networks: Sequence[nn.Module],
                  choices: Sequence[Mapping[str, Any]] | None = None) -> float:
        """Set the scale from ``networks`` timed whole: Σ measured / Σ summed (``choices``: their
        architectures, kept in the table for the one-shot expected latency)."""
        rows = [{"summed_ms": self.summed_ms(n), "measured_ms": self.network_ms(n)}
                for n in networks]
        for row, ch in zip(rows, choices or ()):
            row["choices"] = dict(ch)
        scale = sum(r["measured_ms"] for r in rows) / max(sum(r["summed_ms"] for r in rows), 1e-9)
        self.calibration = {"scale": scale, "networks": rows}
        return scale

    @property
    def scale(self) -> float:
        if not self.calibrated:
            raise RuntimeError("the latency table is not calibrated (LatencyTable.calibrate)")
        return float(self.calibration["scale"])

    def predict(self, network: nn.Module) -> float:
        """The table's latency (ms) of ``network``: scale × Σ of its units' entries."""
        return self.scale * self.summed_ms(network)


def random_networks(build: Callable[[dict[str, Any]], nn.Module], labels: Mapping[str, Any],
                    count: int, seed: int) -> Iterator[tuple[dict[str, Any], nn.Module]]:
    """``count`` frozen networks of uniformly sampled choices (``build(choices)`` → network;
    samples it cannot freeze are drawn again)."""
    rng = np.random.RandomState(seed)
    made = tries = 0
    while made < count and tries < 20 * count:
        tries += 1
        choices = {label: m.random(random_state=rng) for label, m in labels.items()}
        try:
            network = build(choices)
        except (ValueError, UserInputError):  # a sample the space cannot freeze
            continue
        made += 1
        yield choices, network


def latency_table_path(cfg: Config, run_dir: str | Path) -> Path:
    """``search.goal.latency_table``, or ``latency_table.json`` in ``run_dir``."""
    return Path(cfg.search.goal.latency_table) if cfg.search.goal.latency_table else \
        Path(run_dir) / "latency_table.json"


def space_latency_table(cfg: Config, path: str | Path | None) -> LatencyTable:
    """The latency table of ``cfg``'s space at ``model.input_size``, calibrated on
    :data:`CALIBRATION_NETWORKS` random architectures of the space (seeded by ``cfg.seed``):
    read from ``path`` when it is valid there, else measured and written there."""
    table = LatencyTable(path, cfg.model.input_size)
    if table.calibrated:
        logger.info(f"latency table {path}: {len(table.entries)} entries, scale {table.scale:.3f}")
        return table
    start = time.time()
    logger.info(f"latency table: timing the operations of {CALIBRATION_NETWORKS} random architectures "
                f"with onnxruntime ({table.runtime['threads']} thread)")
    labels = build(cfg.space, cfg.dataset.name).simplify()
    made = list(random_networks(lambda ch: build_network(spec_from_choices(cfg, ch)), labels,
                                CALIBRATION_NETWORKS, cfg.seed + 7919))
    if not made:
        raise UserInputError("config", "no architecture of the space could be frozen to time "
                             "its latency", field="search.goal.cost")
    scale = table.calibrate([n for _, n in made], [c for c, _ in made])
    table.save()
    logger.info(f"latency table: {len(table.entries)} entries, scale {scale:.3f} "
                f"({time.time() - start:.0f} s){f'; written to {path}' if path else ''}")
    return table
