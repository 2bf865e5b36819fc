"""The install check: what ``tools/check_install.py`` (and through it
``tools/install.sh``) runs.

:func:`check_install` imports mmdetnas, mmdet and ``mmcv.ops``, prints their
versions and, where ``torch.cuda.is_available()``, runs ``mmcv.ops.nms`` and
``mmcv.ops.roi_align`` on small CUDA tensors and checks them against
hand-derivable values and against the same ops on CPU tensors
(:func:`check_cuda_ops`). An mmcv built with CPU ops only fails that check
(mmcv raises ``nms_impl: implementation for device cuda:0 not found.``);
the check then returns 1 and prints the rebuild command. Without CUDA it
says why the check was skipped. :func:`print_want_cuda` prints the build
decision of ``tools/install.sh`` (:func:`want_cuda`).

This module runs before mmdetnas and its dependencies are installed
(``--want-cuda`` right after torch, ``--mmcv-only`` before mmdetnas):
it imports only the standard library at module level and nothing of the
package, and ``tools/check_install.py`` loads it from its file. The build
decision does not import torch (it reads ``torch/version.py``) unless CUDA
ops are wanted without ``TORCH_CUDA_ARCH_LIST`` (then it counts the visible
GPUs).
"""
import os
import re
import shutil
import sys

__all__ = [
    'torch_cuda_version', 'find_nvcc', 'check_arch_list', 'want_cuda',
    'rebuild_instructions', 'check_cuda_ops', 'check_mmcv_cuda_build',
    'print_want_cuda', 'check_install'
]

INSTALL_COMMAND = 'MMCV_WITH_CUDA=1 bash tools/install.sh'
PIP_REBUILD = ('pip install --no-build-isolation --no-cache-dir '
               '--force-reinstall --no-deps mmcv==2.1.0')
TORCH_SPEC_EXAMPLE = ('TORCH_SPEC="torch==2.13.0 --index-url '
                      'https://download.pytorch.org/whl/cu121"')
# where torch.utils.cpp_extension looks for the CUDA toolkit when it is not
# on PATH (after $CUDA_HOME and $CUDA_PATH)
DEFAULT_CUDA_HOME = '/usr/local/cuda'
_ARCH_RE = re.compile(r'^\d+\.\d+a?(\+PTX)?$')


# ----------------------------------------------------------------------------
# the build decision
# ----------------------------------------------------------------------------
def torch_cuda_version():
    """``torch.version.cuda`` of the installed torch, read from
    ``torch/version.py`` without importing torch (importing it takes a
    second or more); imports torch only where that file cannot be read.
    Raises ImportError where torch is not installed."""
    import ast
    import importlib.util
    spec = importlib.util.find_spec('torch')
    if spec is None:
        raise ImportError('torch is not installed: install it first '
                          '(tools/install.sh does, from TORCH_SPEC)')
    try:
        path = os.path.join(spec.submodule_search_locations[0], 'version.py')
        with open(path, encoding='utf-8') as f:
            tree = ast.parse(f.read(), path)
        for node in tree.body:
            target = getattr(node, 'target', None) or \
                (node.targets[0] if isinstance(node, ast.Assign) else None)
            if isinstance(target, ast.Name) and target.id == 'cuda':
                return ast.literal_eval(node.value)
    except (OSError, SyntaxError, ValueError, TypeError, IndexError):
        pass
    import torch
    return torch.version.cuda


def _gpu_count():
    """``torch.cuda.device_count()`` (imports torch)."""
    import torch
    return torch.cuda.device_count()


def find_nvcc(env=None):
    """The nvcc that torch's extension build would use, or None.

    Looks where ``torch.utils.cpp_extension`` looks for the CUDA toolkit:
    ``$CUDA_HOME/bin``, ``$CUDA_PATH/bin``, ``PATH``, ``/usr/local/cuda/bin``.
    """
    env = os.environ if env is None else env
    for var in ('CUDA_HOME', 'CUDA_PATH'):
        if env.get(var):
            nvcc = os.path.join(env[var], 'bin', 'nvcc')
            return nvcc if os.access(nvcc, os.X_OK) else None
    nvcc = shutil.which('nvcc', path=env.get('PATH', os.defpath))
    if nvcc is not None:
        return nvcc
    nvcc = os.path.join(DEFAULT_CUDA_HOME, 'bin', 'nvcc')
    return nvcc if os.access(nvcc, os.X_OK) else None


def check_arch_list(value):
    """Check a ``TORCH_CUDA_ARCH_LIST`` value (e.g. ``"8.0;9.0+PTX"``,
    ``"9.0"`` or ``"native"``) and raise ValueError naming a bad entry."""
    if value.strip() == 'native':
        return
    entries = [a for a in re.split(r'[;\s]+', value.strip()) if a]
    if not entries:
        raise ValueError(
            f'TORCH_CUDA_ARCH_LIST={value!r} is empty: expected compute '
            'capabilities such as "9.0" (H100/H200), "8.0" (A100), "7.0" '
            '(V100), separated by ";" or spaces, or "native"')
    for arch in entries:
        if not _ARCH_RE.match(arch):
            raise ValueError(
                f'TORCH_CUDA_ARCH_LIST={value!r}: {arch!r} is not a compute '
                'capability; expected entries such as "9.0", "8.0" or '
                '"8.6+PTX", separated by ";" or spaces, or "native"')


def want_cuda(env=None, cuda_version=None, gpu_count=None, log=None):
    """Whether ``tools/install.sh`` should build mmcv with its CUDA ops.

    ``MMCV_WITH_CUDA=1`` forces CUDA ops (mmcv's ``FORCE_CUDA=1``),
    ``MMCV_WITH_CUDA=0`` CPU ops only. Unset (or empty), CUDA ops are built
    when ``nvcc`` is on ``PATH`` and the installed torch is a CUDA build
    (``torch.version.cuda`` is not None, read without importing torch).

    Where CUDA ops are wanted, the build must be able to work: a CUDA torch,
    an nvcc torch can find (forced mode: also ``$CUDA_HOME/bin``,
    ``$CUDA_PATH/bin``, ``/usr/local/cuda/bin``), and either a visible GPU or
    ``TORCH_CUDA_ARCH_LIST`` other than ``native`` (torch's extension build
    takes the architectures of the visible GPUs when the list is unset or
    ``native`` and fails with none).

    Args:
        env (Mapping, optional): the environment; ``os.environ`` by default.
        cuda_version (callable, optional): returns ``torch.version.cuda``;
            by default :func:`torch_cuda_version` (the installed torch).
        gpu_count (callable, optional): returns the number of visible GPUs;
            by default ``torch.cuda.device_count()``, asked only where CUDA
            ops are wanted and ``TORCH_CUDA_ARCH_LIST`` is unset.
        log (callable, optional): where notes go; stderr by default.

    Returns:
        bool: True to build mmcv's CUDA ops.

    Raises:
        ValueError: ``MMCV_WITH_CUDA`` is not 0, 1 or unset, or CUDA ops are
            wanted but cannot be built; the message says what to do.
    """
    env = os.environ if env is None else env
    cuda_version = torch_cuda_version if cuda_version is None else \
        cuda_version
    gpu_count = _gpu_count if gpu_count is None else gpu_count
    log = log or (lambda msg: print(msg, file=sys.stderr))
    switch = env.get('MMCV_WITH_CUDA', '').strip()
    if switch not in ('', '0', '1'):
        raise ValueError(
            f'MMCV_WITH_CUDA={switch!r}: expected 1 (build mmcv with its CUDA '
            'ops), 0 (CPU ops only) or unset (CUDA ops when nvcc is on PATH '
            'and torch is a CUDA build)')
    if switch == '0':
        return False
    forced = switch == '1'
    nvcc = (find_nvcc(env) if forced else
            shutil.which('nvcc', path=env.get('PATH', os.defpath)))
    if nvcc is None:
        if forced:
            raise ValueError(
                'MMCV_WITH_CUDA=1 but no nvcc was found (looked in '
                '$CUDA_HOME/bin, $CUDA_PATH/bin, PATH and '
                f'{DEFAULT_CUDA_HOME}/bin): install the CUDA toolkit that '
                'matches torch.version.cuda (e.g. conda install -c nvidia '
                'cuda-nvcc, or module load cuda on a cluster), put its bin '
                'on PATH, or build on a GPU node that has it')
        return False
    torch_cuda = cuda_version()
    if torch_cuda is None:
        if forced:
            raise ValueError(
                'MMCV_WITH_CUDA=1 but the installed torch is a CPU build '
                '(torch.version.cuda is None): mmcv\'s CUDA ops need a CUDA '
                f'torch; install one first, e.g. with {TORCH_SPEC_EXAMPLE} '
                '(cuXXX matching your CUDA; in an existing venv add '
                '--force-reinstall to TORCH_SPEC or use a fresh VENV)')
        log(f'note: nvcc found ({nvcc}) but torch is a CPU build '
            '(torch.version.cuda is None): building mmcv with CPU ops only; '
            f'for CUDA ops install a CUDA torch ({TORCH_SPEC_EXAMPLE}) '
            'and set MMCV_WITH_CUDA=1')
        return False
    arch_list = env.get('TORCH_CUDA_ARCH_LIST', '').strip()
    if arch_list:
        check_arch_list(arch_list)
    if arch_list in ('', 'native') and not gpu_count():
        how = 'MMCV_WITH_CUDA=1' if forced else \
            f'nvcc on PATH ({nvcc}) and torch built with CUDA {torch_cuda}'
        raise ValueError(
            f'mmcv\'s CUDA ops are wanted ({how}) but no GPU is visible and '
            f'TORCH_CUDA_ARCH_LIST is {arch_list or "unset"}, so torch cannot '
            'tell which GPU architectures to build for: set it, e.g. '
            'TORCH_CUDA_ARCH_LIST='
            '"9.0" (H100/H200), "8.0" (A100), "7.0" (V100), or '
            'MMCV_WITH_CUDA=0 for CPU ops only')
    return True


# ----------------------------------------------------------------------------
# the CUDA ops check
# ----------------------------------------------------------------------------
def _arch_hint(device=None):
    """The ``TORCH_CUDA_ARCH_LIST`` to suggest: the GPU's own capability
    where one is visible, else the environment's, else a placeholder."""
    try:
        import torch
        if torch.cuda.is_available():
            major, minor = torch.cuda.get_device_capability(device)
            return f'{major}.{minor}'
    except Exception:  # noqa: BLE001 -- only a hint
        pass
    return os.environ.get('TORCH_CUDA_ARCH_LIST') or \
        '<your GPU: 9.0 H100/H200, 8.0 A100, 7.0 V100>'


def rebuild_instructions(device=None):
    """The commands that rebuild mmcv 2.1.0 with its CUDA ops."""
    return (
        'Rebuild mmcv with its CUDA ops (needs nvcc from the CUDA toolkit '
        'that matches torch.version.cuda):\n'
        f'  {INSTALL_COMMAND}\n'
        'or, in the active environment:\n'
        '  FORCE_CUDA=1 MAX_JOBS=8 '
        f'TORCH_CUDA_ARCH_LIST="{_arch_hint(device)}" {PIP_REBUILD}')


def _compiled_cuda():
    """The CUDA version mmcv's ops were compiled with, or 'not available'
    (CPU ops only)."""
    import mmcv.ops
    return mmcv.ops.get_compiling_cuda_version()


def _run_op(name, fn, device, *args, **kwargs):
    """Run one mmcv op; a failure becomes a RuntimeError that says what it
    means and how to rebuild."""
    try:
        return fn(*args, **kwargs)
    except Exception as err:  # noqa: BLE001 -- re-raised with advice
        text = str(err).strip()
        if 'implementation for device' in text and 'not found' in text:
            try:
                compiled = _compiled_cuda()
            except Exception:  # noqa: BLE001 -- only extra detail
                compiled = 'unknown'
            head = (f'mmcv was built without CUDA ops: mmcv.ops.{name} on '
                    f'{device} failed with "{text}" (mmcv ops compiled with '
                    f'CUDA: {compiled}).')
        elif 'no kernel image is available' in text:
            head = (f'mmcv\'s CUDA ops were built for other GPU '
                    f'architectures: mmcv.ops.{name} on {device} failed with '
                    f'"{text}"; TORCH_CUDA_ARCH_LIST must include this GPU '
                    f'({_arch_hint(device)}).')
        else:
            head = (f'mmcv.ops.{name} failed on {device}: '
                    f'{type(err).__name__}: {text}')
        raise RuntimeError(f'{head}\n{rebuild_instructions(device)}') from err


def _expect_close(name, what, got, expected, device):
    """Raise RuntimeError when ``got`` differs from ``expected``."""
    import torch
    got = got.detach().cpu()
    expected = expected.detach().cpu()
    if got.shape != expected.shape or not torch.allclose(
            got.double(), expected.double(), rtol=1e-4, atol=1e-4):
        raise RuntimeError(
            f'mmcv.ops.{name} on {device} gives wrong results ({what}): got '
            f'{got.tolist()}, expected {expected.tolist()}.\n'
            f'{rebuild_instructions(device)}')


def check_cuda_ops(device='cuda'):
    """Run ``mmcv.ops.nms`` and ``mmcv.ops.roi_align`` on ``device`` and
    check the results.

    * NMS of three boxes at IoU 0.5: the second box overlaps the first
      (IoU 81/119) and goes, the third is disjoint and stays: keep [0, 2];
    * RoIAlign (avg, ``aligned=True``) of the linear map f(y, x) = x + 10 y:
      bilinear sampling is exact on it, so every bin is f at the bin centre;
    * off the CPU, both ops on a seeded random case against the same ops on
      CPU tensors.

    Args:
        device (str | torch.device): where to run the ops; ``'cpu'`` checks
            the CPU ops against the expected values only.

    Raises:
        RuntimeError: an op failed on ``device`` (e.g. mmcv built without
            CUDA ops) or gave wrong results; the message gives the rebuild
            command.
    """
    import mmcv.ops as ops
    import torch
    device = torch.device(device)

    # NMS, hand-checkable
    boxes = torch.tensor([[0., 0., 10., 10.], [1., 1., 11., 11.],
                          [20., 20., 30., 30.]])
    scores = torch.tensor([0.9, 0.8, 0.7])
    dets, keep = _run_op('nms', ops.nms, device, boxes.to(device),
                         scores.to(device), 0.5)
    expected_keep = torch.tensor([0, 2])
    if keep.cpu().tolist() != expected_keep.tolist():
        raise RuntimeError(
            f'mmcv.ops.nms on {device} keeps boxes {keep.cpu().tolist()}, '
            f'expected {expected_keep.tolist()} (IoU of boxes 0 and 1 is '
            f'81/119 > 0.5).\n{rebuild_instructions(device)}')
    _expect_close('nms', 'kept boxes and scores', dets,
                  torch.cat([boxes, scores[:, None]], 1)[expected_keep],
                  device)

    # RoIAlign of a linear map: each bin is the map at the bin centre
    height = width = 8
    ys, xs = torch.meshgrid(torch.arange(height, dtype=torch.float32),
                            torch.arange(width, dtype=torch.float32),
                            indexing='ij')
    feat = (xs + 10 * ys)[None, None]
    rois = torch.tensor([[0., 2., 2., 6., 6.], [0., 1., 3., 7., 5.]])
    out_size = 2
    got = _run_op('roi_align', ops.roi_align, device, feat.to(device),
                  rois.to(device), (out_size, out_size), 1.0, 0, 'avg', True)
    expected = []
    for _, x1, y1, x2, y2 in rois.tolist():
        # aligned=True: pixel centres at integer coordinates -> shift by 0.5
        bin_w, bin_h = (x2 - x1) / out_size, (y2 - y1) / out_size
        cx = [x1 - 0.5 + (i + 0.5) * bin_w for i in range(out_size)]
        cy = [y1 - 0.5 + (i + 0.5) * bin_h for i in range(out_size)]
        expected.append([[[x + 10 * y for x in cx] for y in cy]])
    _expect_close('roi_align', 'linear feature map', got,
                  torch.tensor(expected), device)

    if device.type == 'cpu':
        return
    # a random case against the same ops on CPU tensors
    gen = torch.Generator().manual_seed(0)
    xy = torch.rand(32, 2, generator=gen) * 40
    wh = torch.rand(32, 2, generator=gen) * 20 + 2
    boxes = torch.cat([xy, xy + wh], 1)
    scores = torch.rand(32, generator=gen)
    cpu_dets, cpu_keep = ops.nms(boxes, scores, 0.3)
    dets, keep = _run_op('nms', ops.nms, device, boxes.to(device),
                         scores.to(device), 0.3)
    _expect_close('nms', 'kept indices vs CPU', keep, cpu_keep, device)
    _expect_close('nms', 'kept boxes vs CPU', dets, cpu_dets, device)
    feat = torch.rand(2, 3, 16, 16, generator=gen)
    rois = torch.cat([torch.tensor([[0.], [1.], [1.], [0.]]),
                      torch.rand(4, 2, generator=gen) * 6,
                      torch.rand(4, 2, generator=gen) * 6 + 8], 1)
    args = ((3, 3), 0.5, 2, 'avg', True)
    cpu_out = ops.roi_align(feat, rois, *args)
    got = _run_op('roi_align', ops.roi_align, device, feat.to(device),
                  rois.to(device), *args)
    _expect_close('roi_align', 'random case vs CPU', got, cpu_out, device)


def check_mmcv_cuda_build():
    """Raise RuntimeError unless mmcv's ops were compiled with CUDA (the
    same major version as torch's) and, where a GPU is visible, run on it
    (:func:`check_cuda_ops`)."""
    import torch
    compiled = _compiled_cuda()
    if compiled == 'not available':
        raise RuntimeError(
            'mmcv was built without CUDA ops (mmcv.ops.'
            'get_compiling_cuda_version() is "not available").\n'
            f'{rebuild_instructions()}')
    if torch.version.cuda and \
            compiled.split('.')[0] != torch.version.cuda.split('.')[0]:
        raise RuntimeError(
            f'mmcv\'s ops were compiled with CUDA {compiled} but torch '
            f'{torch.__version__} uses CUDA {torch.version.cuda}.\n'
            f'{rebuild_instructions()}')
    if torch.cuda.is_available():
        check_cuda_ops('cuda')


def _skip_reason():
    """Why the CUDA check cannot run here."""
    import torch
    if torch.version.cuda is None:
        return (f'torch {torch.__version__} is a CPU build '
                '(torch.version.cuda is None)')
    visible = os.environ.get('CUDA_VISIBLE_DEVICES')
    where = '' if visible is None else f', CUDA_VISIBLE_DEVICES={visible!r}'
    return (f'torch {torch.__version__} is built with CUDA '
            f'{torch.version.cuda} but no GPU is visible (no device or '
            f'driver{where})')


def print_want_cuda() -> int:
    """Print ``1`` when ``tools/install.sh`` should build mmcv with its
    CUDA ops, else ``0`` (:func:`want_cuda` of this environment).

    Returns:
        int: the exit status: 0, or 2 (the reason on stderr) for a bad
        ``MMCV_WITH_CUDA``, CUDA ops that cannot be built, or no torch.
    """
    try:
        print(1 if want_cuda() else 0)
    except (ValueError, ImportError) as err:
        print(f'ERROR: {err}', file=sys.stderr)
        return 2
    return 0


def check_install(expect: str = 'any', mmcv_only: bool = False) -> int:
    """Run the install check and print its result.

    Args:
        expect (str): ``'any'``; ``'cuda'``: also fail when mmcv's ops were
            compiled without CUDA, even with no GPU visible
            (:func:`check_mmcv_cuda_build`); ``'cpu'``: CPU ops were asked
            for, a failed CUDA check is only a warning.
        mmcv_only (bool): Import ``mmcv.ops`` but not mmdetnas and mmdet.

    Returns:
        int: the exit status: 0 ok, 1 the CUDA check failed (the error and
        the rebuild command on stderr).
    """
    import mmcv
    import mmcv.ops  # noqa: F401 -- the compiled ops
    import torch
    if not mmcv_only:
        import mmdet

        import mmdetnas
        print('mmdetnas', mmdetnas.__version__, 'ready: mmdet',
              mmdet.__version__, 'mmcv', mmcv.__version__)
    print(f'torch {torch.__version__} (CUDA {torch.version.cuda}); mmcv ops '
          f'compiled with CUDA: {_compiled_cuda()}')
    try:
        if expect == 'cuda':
            check_mmcv_cuda_build()
        elif torch.cuda.is_available():
            check_cuda_ops('cuda')
    except RuntimeError as err:
        if expect == 'cpu':
            print(f'WARNING (CPU ops asked for with MMCV_WITH_CUDA=0): {err}',
                  file=sys.stderr)
            return 0
        print(f'ERROR: {err}', file=sys.stderr)
        return 1
    if torch.cuda.is_available():
        print(f'CUDA check passed: mmcv.ops.nms and roi_align on '
              f'{torch.cuda.get_device_name()} match CPU')
    else:
        print(f'CUDA check skipped: torch.cuda.is_available() is False: '
              f'{_skip_reason()}')
    return 0

