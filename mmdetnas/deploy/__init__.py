"""Deployment: inference backends for timing, ONNX export of searched
networks, and latency lookup tables per device, backend and input shape."""
from .backends import (BACKENDS, LatencyBackend, OnnxRuntimeBackend,
                       OpenVINOBackend, Timing, TorchBackend, build_backend,
                       cpu_name, device_label, require_package)
from .latency_table import (LatencyTable, LatencyTableError, block_key,
                            build_latency_table, build_model,
                            parts_fingerprint)
from .onnx_export import (DeployableModel, ExportMismatchError, check_onnx,
                          deployable_input, export_onnx, is_one_stage)

__all__ = [
    'BACKENDS', 'LatencyBackend', 'TorchBackend', 'OnnxRuntimeBackend',
    'OpenVINOBackend', 'Timing', 'build_backend', 'cpu_name', 'device_label',
    'require_package', 'LatencyTable', 'LatencyTableError', 'block_key',
    'build_latency_table', 'build_model', 'parts_fingerprint',
    'DeployableModel', 'ExportMismatchError', 'check_onnx',
    'deployable_input', 'export_onnx', 'is_one_stage'
]
