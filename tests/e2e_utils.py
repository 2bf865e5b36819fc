"""Tiny data sets and a tool runner shared by the end-to-end tests."""
import json
import os
import os.path as osp
import subprocess
import sys

import cv2
import numpy as np

from mmdetnas.datasets.synthetic import (  # noqa: F401 (re-exported)
    coco_options, make_tiny_coco)

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))


def make_tiny_imagenet(root: str, classes=('a', 'b'), per_class: int = 4,
                       size: int = 32, seed: int = 0) -> str:
    """ImageNet-layout folders ``train/<cls>`` and ``val/<cls>`` with
    ``meta/{train,val}.txt``; class ``k`` images have brightness ~ k."""
    rng = np.random.default_rng(seed)
    os.makedirs(osp.join(root, 'meta'), exist_ok=True)
    for split in ('train', 'val'):
        lines = []
        for label, cls in enumerate(classes):
            os.makedirs(osp.join(root, split, cls), exist_ok=True)
            for i in range(per_class):
                base = 40 + 150 * label
                img = (base + rng.integers(0, 40, (size, size, 3))).astype(
                    np.uint8)
                rel = f'{cls}/{i}.png'
                cv2.imwrite(osp.join(root, split, rel), img)
                lines.append(f'{rel} {label}')
        with open(osp.join(root, 'meta', f'{split}.txt'), 'w') as f:
            f.write('\n'.join(lines) + '\n')
    return root


def run_tool(args: list, timeout: int = 600, check: bool = True):
    """Run ``python tools/...`` like a user, in the repository root."""
    env = dict(os.environ, PYTHONWARNINGS='ignore', OMP_NUM_THREADS='1')
    proc = subprocess.run([sys.executable, *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(
            f'{args} exited {proc.returncode}:\n{proc.stdout[-3000:]}\n'
            f'{proc.stderr[-6000:]}')
    return proc


_TOOLS = {}


def load_tool(path: str):
    """The module of the tool ``path`` (e.g. ``'tools/train.py'``, relative
    to the repository root), loaded from its file once. Only for tests of a
    tool's own argument parsing (``parse_args``): what a tool does is tested
    through the library call it makes, or by running it (:func:`run_tool`).
    """
    if path not in _TOOLS:
        import importlib.util
        name = '_tool_' + osp.splitext(path)[0].replace('/', '_')
        spec = importlib.util.spec_from_file_location(name,
                                                      osp.join(ROOT, path))
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        _TOOLS[path] = module
    return _TOOLS[path]


def run_tools(commands: list, timeout: int = 900) -> list:
    """Run independent ``python tools/...`` commands at the same time (each
    one single-threaded, as :func:`run_tool` runs it: on the 2-core machine
    two of them take the wall time of one); raises like :func:`run_tool`
    when one fails. Returns the completed processes in order."""
    env = dict(os.environ, PYTHONWARNINGS='ignore', OMP_NUM_THREADS='1')
    procs = [subprocess.Popen([sys.executable, *args], cwd=ROOT, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for args in commands]
    done = []
    try:
        for args, proc in zip(commands, procs):
            out, err = proc.communicate(timeout=timeout)
            done.append(subprocess.CompletedProcess(
                proc.args, proc.returncode, out, err))
            if proc.returncode != 0:
                raise AssertionError(
                    f'{args} exited {proc.returncode}:\n{out[-3000:]}\n'
                    f'{err[-6000:]}')
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    return done


def scalars(work_dir: str) -> list:
    """The train log records (``vis_data/scalars.json``) of a work dir."""
    import glob
    files = sorted(glob.glob(osp.join(work_dir, '*', 'vis_data',
                                      'scalars.json')))
    out = []
    for path in files:
        with open(path) as f:
            out += [json.loads(x) for x in f if x.strip()]
    return out


class SearchRun:
    """A search config's outer Runner and its loop, built as
    ``tools/search.py`` builds them (:func:`mmdetnas.engine.
    build_search_runner`), for tests that drive a search in-process (e.g.
    with a loop subclass whose scoring stands in for training).

    ``run()`` runs ``runner.train()`` and returns the Pareto front;
    attributes not found here are the loop's.
    """

    def __init__(self, cfg, work_dir, loop_type=None, resume=False):
        import copy

        from mmdetnas.engine import build_search_runner
        cfg = copy.deepcopy(cfg)
        cfg.work_dir = str(work_dir)
        if isinstance(loop_type, type):
            # registered under a name: the Runner prints its config
            from mmdetnas.registry import LOOPS
            name = f'_Test{loop_type.__name__}{id(loop_type)}'
            LOOPS.register_module(name=name, module=loop_type, force=True)
            loop_type = f'mmdetnas.{name}'
        if loop_type is not None:
            cfg.train_cfg.type = loop_type
        cfg.train_cfg.resume = resume
        self.runner = build_search_runner(cfg)
        self.loop = self.runner.train_loop

    def run(self):
        self.runner.train()
        return self.loop.front()

    def __getattr__(self, name):
        return getattr(self.__dict__['loop'], name)
