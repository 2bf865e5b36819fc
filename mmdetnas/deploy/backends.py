"""Inference backends that time a network: one small interface.

A backend turns a PyTorch module and its example inputs into something it
can run (PyTorch eager as it is; ONNX Runtime and OpenVINO through an ONNX
export), makes ``warmup`` untimed calls, then times ``rounds`` rounds of
``repeats`` calls, with its thread count pinned. Several networks timed
together take their rounds in turn (one call each per round by default),
so the slow drift of a shared machine's speed touches all of them alike.
Every measurement is a :class:`Timing` that says what it was measured
with: device (CPU model or GPU name), backend and version, threads, batch,
input shape, warm-up and repeats, and the median and spread in **ms**.

SM-NAS (Yao et al., AAAI 2020, Sec. 3) optimises inference time on the
target hardware rather than FLOPs; DetNAS constrains FLOPs. These backends
give both searches a deployed latency, measured (SM-NAS candidates) or
predicted from a latency lookup table (:mod:`mmdetnas.deploy.latency_table`).

The ONNX Runtime and OpenVINO packages are optional: a backend whose
package is missing raises an ``ImportError`` naming the package to
install.
"""
import contextlib
import os
import os.path as osp
import platform
import tempfile
import time
from dataclasses import asdict, dataclass
from typing import Callable, List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn as nn

#: Names accepted by :func:`build_backend`.
BACKENDS: Tuple[str, ...] = ('torch', 'onnxruntime', 'openvino')

#: Default timing settings of every backend (see :class:`LatencyBackend`),
#: also the defaults of ``tools/analysis_tools/latency_table.py``.
DEFAULT_TIMING = dict(warmup=5, repeats=1, rounds=100)

#: pip package of each optional backend (named in the ImportError).
_PACKAGES = {'onnxruntime': 'onnxruntime', 'openvino': 'openvino'}


def require_package(backend: str):
    """Import the package of an optional backend.

    Returns:
        module: ``onnxruntime`` or ``openvino``.

    Raises:
        ImportError: the package is not installed; the message names the
            backend and the ``pip install`` that provides it.
    """
    name = _PACKAGES[backend]
    try:
        return __import__(name)
    except ImportError as e:
        raise ImportError(
            f'the {backend!r} latency backend needs the package {name!r}, '
            f'which is not installed ({e}); install it with '
            f'`pip install {name}` (make install does)') from e


def cpu_name() -> str:
    """The CPU model (``model name`` of ``/proc/cpuinfo``, else
    ``platform.processor()``, else the machine type)."""
    try:
        with open('/proc/cpuinfo', encoding='utf-8') as f:
            for line in f:
                if line.startswith('model name'):
                    return line.split(':', 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or 'unknown CPU'


def device_label(kind: str) -> str:
    """``'cpu: <CPU model>'`` or ``'cuda: <GPU name>'`` (the device a
    timing ran on, as tables and records name it).

    Raises:
        ValueError: ``kind`` is neither ``'cpu'`` nor ``'cuda'``.
    """
    if kind == 'cpu':
        return f'cpu: {cpu_name()}'
    if kind == 'cuda':
        name = (torch.cuda.get_device_name()
                if torch.cuda.is_available() else 'unknown GPU')
        return f'cuda: {name}'
    raise ValueError(f"device kind must be 'cpu' or 'cuda', got {kind!r}")


@dataclass
class Timing:
    """One latency measurement.

    Attributes:
        median_ms (float): Median of the timed runs, ms.
        iqr_ms (float): Interquartile range (75th - 25th percentile), ms.
        min_ms (float): Fastest run, ms.
        max_ms (float): Slowest run, ms.
        backend (str): ``'torch'``, ``'onnxruntime'`` or ``'openvino'``.
        backend_version (str): Version of the backend's package.
        device (str): :func:`device_label` of the device.
        threads (int): Threads the backend was pinned to.
        batch (int): Batch size of the input.
        input_shape (list[int]): Shape of the (first) input, NCHW.
        warmup (int): Untimed calls before the first round.
        repeats (int): Timed calls over all rounds.
    """
    median_ms: float
    iqr_ms: float
    min_ms: float
    max_ms: float
    backend: str
    backend_version: str
    device: str
    threads: int
    batch: int
    input_shape: List[int]
    warmup: int
    repeats: int

    def to_dict(self) -> dict:
        return asdict(self)

    def describe(self) -> str:
        """``'6.12 ms (IQR 0.05) onnxruntime 1.32.0, cpu: ..., 1 thread,
        1x3x224x224'``."""
        shape = 'x'.join(str(s) for s in self.input_shape)
        return (f'{self.median_ms:.3f} ms (IQR {self.iqr_ms:.3f}, '
                f'{self.repeats} runs after {self.warmup} warm-up) on '
                f'{self.backend} {self.backend_version}, {self.device}, '
                f'{self.threads} thread(s), input {shape}')


def _as_tuple(inputs) -> tuple:
    return tuple(inputs) if isinstance(inputs, (tuple, list)) else (inputs, )


class LatencyBackend:
    """Times networks on one inference backend.

    A measurement makes ``warmup`` untimed calls, then ``rounds`` rounds of
    ``repeats`` timed calls; the median is taken over every timed call of
    every round. Several networks timed together (:meth:`time_many`) are
    all warmed up first, then take their rounds in turn, so a drift of the
    machine's speed (a shared host) touches all of them alike instead of
    reordering them. On this project's 2-core VM the speed drifts over
    seconds: two timings of the same 20 exported 300M backbones (ONNX
    Runtime, 224x224) agreed at Kendall tau 0.54 with 5 rounds of 20 calls
    each, and at 0.90 with 100 rounds of one call (the same number of
    calls), hence the defaults.

    Args:
        device (str): ``'auto'`` (CUDA where the backend can use it, else
            the CPU), ``'cpu'`` or ``'cuda'``.
        threads (int): Intra-op threads the backend is pinned to (>= 1;
            default 1: repeatable timings on a shared machine).
        warmup (int): Untimed calls before the first round (>= 0).
        repeats (int): Timed calls per round (>= 1).
        rounds (int): Rounds (>= 1); a network timed alone makes
            ``warmup + rounds * repeats`` calls.

    Raises:
        ValueError: a bad ``device``, ``threads``, ``warmup``, ``repeats``
            or ``rounds`` (naming the value).
    """

    name: str = ''

    def __init__(self, device: str = 'auto', threads: int = 1,
                 warmup: int = DEFAULT_TIMING['warmup'],
                 repeats: int = DEFAULT_TIMING['repeats'],
                 rounds: int = DEFAULT_TIMING['rounds']):
        if device not in ('auto', 'cpu', 'cuda'):
            raise ValueError(f"latency device must be 'auto', 'cpu' or "
                             f"'cuda', got {device!r}")
        if int(threads) < 1:
            raise ValueError(f'latency threads must be >= 1, got {threads}')
        if int(warmup) < 0 or int(repeats) < 1 or int(rounds) < 1:
            raise ValueError(
                f'latency timing needs warmup >= 0, repeats >= 1 and rounds'
                f' >= 1, got warmup={warmup}, repeats={repeats}, '
                f'rounds={rounds}')
        self.threads = int(threads)
        self.warmup = int(warmup)
        self.repeats = int(repeats)
        self.rounds = int(rounds)
        self.device = self._resolve_device(device)

    # -------------------------------------------------------- per backend
    def _resolve_device(self, device: str) -> str:
        raise NotImplementedError

    @property
    def version(self) -> str:
        raise NotImplementedError

    def load(self, module: nn.Module, inputs) -> Callable[[], None]:
        """A function that runs ``module`` on ``inputs`` once on this
        backend (ONNX backends export the module first)."""
        raise NotImplementedError

    def pinned(self):
        """Context in which timing runs (thread pinning of the backend)."""
        return contextlib.nullcontext()

    # ------------------------------------------------------------- common
    @property
    def device_name(self) -> str:
        """:func:`device_label` of the device timings run on."""
        return device_label(self.device)

    def settings(self) -> dict:
        """What a timing on this backend depends on: ``backend``,
        ``backend_version``, ``device``, ``threads``, ``warmup``,
        ``repeats``, ``rounds``."""
        return dict(backend=self.name, backend_version=self.version,
                    device=self.device_name, threads=self.threads,
                    warmup=self.warmup, repeats=self.repeats,
                    rounds=self.rounds)

    def warm(self, run: Callable[[], None]) -> None:
        """The ``warmup`` untimed calls of a loaded network."""
        with self.pinned():
            for _ in range(self.warmup):
                run()

    def sample(self, run: Callable[[], None]) -> List[float]:
        """One round: the ms of ``repeats`` timed calls
        (``time.perf_counter``; a CUDA runner synchronises)."""
        with self.pinned():
            times = []
            for _ in range(self.repeats):
                t = time.perf_counter()
                run()
                times.append((time.perf_counter() - t) * 1000.0)
        return times

    def summarize(self, times: Sequence[float], input_shape) -> Timing:
        """A :class:`Timing` of the timed calls ``times`` (ms)."""
        a = np.asarray(times, dtype=float)
        shape = [int(s) for s in input_shape]
        return Timing(
            median_ms=float(np.median(a)),
            iqr_ms=float(np.percentile(a, 75) - np.percentile(a, 25)),
            min_ms=float(a.min()), max_ms=float(a.max()), backend=self.name,
            backend_version=self.version, device=self.device_name,
            threads=self.threads, batch=shape[0] if shape else 1,
            input_shape=shape, warmup=self.warmup, repeats=len(a))

    def time_many(self, runs: Sequence[Callable[[], None]],
                  input_shapes: Sequence) -> List[Timing]:
        """Time several loaded networks: each warmed up, then their
        rounds in turn.

        Args:
            runs: functions from :meth:`load` (or ``load_onnx``).
            input_shapes: the recorded input shape of each.

        Returns:
            list[Timing]: one per function; ``repeats`` is the number of
            timed calls over all rounds.
        """
        samples = [[] for _ in runs]
        for run in runs:
            self.warm(run)
        for _ in range(self.rounds):
            for i, run in enumerate(runs):
                samples[i] += self.sample(run)
        return [self.summarize(s, shp)
                for s, shp in zip(samples, input_shapes)]

    def time_fn(self, run: Callable[[], None], input_shape) -> Timing:
        """Time one loaded network (:meth:`time_many` of one)."""
        return self.time_many([run], [input_shape])[0]

    def time(self, module: nn.Module, inputs) -> Timing:
        """Median latency of ``module(*inputs)`` on this backend.

        Args:
            module (nn.Module): The network (put in eval mode here).
            inputs (Tensor | tuple[Tensor]): Example inputs; the first one's
                shape is recorded (``N x C x H x W``).

        Returns:
            Timing: the measurement and its settings.
        """
        inputs = _as_tuple(inputs)
        run = self.load(module.eval(), inputs)
        return self.time_fn(run, inputs[0].shape)

    def time_onnx(self, path: str, inputs) -> Timing:
        """Time an exported ONNX file (ONNX backends only).

        Raises:
            NotImplementedError: on the PyTorch backend.
        """
        raise NotImplementedError(
            f'the {self.name!r} backend does not run ONNX files')


@contextlib.contextmanager
def torch_threads(n: int):
    """Pin ``torch``'s intra-op threads to ``n`` inside the block."""
    old = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


class TorchBackend(LatencyBackend):
    """PyTorch eager on the current device (the model is moved there),
    without gradients; CUDA is synchronised around every run."""

    name = 'torch'

    def _resolve_device(self, device):
        if device == 'auto':
            return 'cuda' if torch.cuda.is_available() else 'cpu'
        if device == 'cuda' and not torch.cuda.is_available():
            raise ValueError("latency device 'cuda' asked for, but torch "
                             'sees no CUDA device')
        return device

    @property
    def version(self) -> str:
        return torch.__version__

    def load(self, module, inputs):
        module = module.to(self.device).eval()
        inputs = tuple(x.to(self.device) for x in _as_tuple(inputs))
        cuda = self.device == 'cuda'

        @torch.no_grad()
        def run():
            module(*inputs)
            if cuda:
                torch.cuda.synchronize()
        return run

    def pinned(self):
        return torch_threads(self.threads)


class _OnnxBackend(LatencyBackend):
    """A backend that runs ONNX files; :meth:`load` exports the module to a
    temporary file first (:func:`mmdetnas.deploy.export_onnx`)."""

    def load(self, module, inputs):
        from .onnx_export import export_onnx
        inputs = _as_tuple(inputs)
        with tempfile.TemporaryDirectory() as tmp:
            path = osp.join(tmp, 'model.onnx')
            export_onnx(module, inputs, path, check=False)
            return self.load_onnx(path, inputs)

    def load_onnx(self, path: str, inputs) -> Callable[[], None]:
        raise NotImplementedError

    def time_onnx(self, path, inputs) -> Timing:
        inputs = _as_tuple(inputs)
        return self.time_fn(self.load_onnx(path, inputs), inputs[0].shape)

    def run_onnx(self, path: str, inputs) -> List[np.ndarray]:
        """The outputs of an ONNX file on this backend, as numpy arrays in
        the file's output order."""
        raise NotImplementedError


class OnnxRuntimeBackend(_OnnxBackend):
    """ONNX Runtime: the CPU execution provider, or the CUDA provider
    (``device='cuda'``, or ``'auto'`` where onnxruntime-gpu and a GPU are
    present); ``threads`` intra-op threads, one inter-op thread, all graph
    optimisations."""

    name = 'onnxruntime'

    def _resolve_device(self, device):
        ort = require_package('onnxruntime')
        has_cuda = ('CUDAExecutionProvider' in ort.get_available_providers()
                    and torch.cuda.is_available())
        if device == 'auto':
            return 'cuda' if has_cuda else 'cpu'
        if device == 'cuda' and not has_cuda:
            raise ValueError(
                "latency device 'cuda' asked for, but onnxruntime has no "
                'usable CUDAExecutionProvider (providers: '
                f'{ort.get_available_providers()}); install onnxruntime-gpu '
                'on a CUDA machine')
        return device

    @property
    def version(self) -> str:
        return require_package('onnxruntime').__version__

    def session(self, path: str):
        """An ``onnxruntime.InferenceSession`` of ``path`` with this
        backend's settings."""
        ort = require_package('onnxruntime')
        so = ort.SessionOptions()
        so.intra_op_num_threads = self.threads
        so.inter_op_num_threads = 1
        so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        so.graph_optimization_level = (
            ort.GraphOptimizationLevel.ORT_ENABLE_ALL)
        so.log_severity_level = 3
        provider = ('CUDAExecutionProvider' if self.device == 'cuda'
                    else 'CPUExecutionProvider')
        return ort.InferenceSession(path, so, providers=[provider])

    def _feeds(self, sess, inputs):
        names = [i.name for i in sess.get_inputs()]
        return {n: x.detach().cpu().numpy() for n, x in zip(names, inputs)}

    def load_onnx(self, path, inputs):
        sess = self.session(path)
        feeds = self._feeds(sess, _as_tuple(inputs))

        def run():
            sess.run(None, feeds)
        return run

    def run_onnx(self, path, inputs):
        sess = self.session(path)
        return sess.run(None, self._feeds(sess, _as_tuple(inputs)))


class OpenVINOBackend(_OnnxBackend):
    """OpenVINO on the CPU: ``threads`` inference threads, the latency
    performance hint and float32 inference precision (the CPU plugin would
    otherwise pick bf16 where the CPU has it)."""

    name = 'openvino'

    def _resolve_device(self, device):
        require_package('openvino')
        if device == 'cuda':
            raise ValueError("the 'openvino' latency backend runs on the CPU;"
                             " got device 'cuda'")
        return 'cpu'

    @property
    def version(self) -> str:
        return require_package('openvino').get_version()

    def compile(self, path: str):
        ov = require_package('openvino')
        core = ov.Core()
        return core.compile_model(path, 'CPU', {
            'INFERENCE_NUM_THREADS': self.threads,
            'PERFORMANCE_HINT': 'LATENCY',
            'INFERENCE_PRECISION_HINT': 'f32',
        })

    def load_onnx(self, path, inputs):
        compiled = self.compile(path)
        request = compiled.create_infer_request()
        feeds = {i: x.detach().cpu().numpy()
                 for i, x in enumerate(_as_tuple(inputs))}

        def run():
            request.infer(feeds)
        return run

    def run_onnx(self, path, inputs):
        compiled = self.compile(path)
        request = compiled.create_infer_request()
        result = request.infer({i: x.detach().cpu().numpy()
                                for i, x in enumerate(_as_tuple(inputs))})
        return [np.asarray(result[compiled.output(i)])
                for i in range(len(compiled.outputs))]


_CLASSES = {c.name: c for c in (TorchBackend, OnnxRuntimeBackend,
                                OpenVINOBackend)}


def build_backend(name: str, **kwargs) -> LatencyBackend:
    """The backend called ``name`` (:data:`BACKENDS`).

    Args:
        name (str): ``'torch'``, ``'onnxruntime'`` or ``'openvino'``.
        **kwargs: :class:`LatencyBackend` settings (``device``,
            ``threads``, ``warmup``, ``repeats``, ``rounds``).

    Raises:
        ValueError: an unknown ``name`` (the message lists the backends) or
            a bad setting.
        ImportError: the backend's optional package is missing.
    """
    if name not in _CLASSES:
        raise ValueError(f'unknown latency backend {name!r}; expected one of '
                         f'{list(BACKENDS)}')
    return _CLASSES[name](**kwargs)
