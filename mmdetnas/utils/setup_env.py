"""Library-level start-up used by the tools and by anyone building mmdetnas
models: registering every module, and the SyncBN -> BN adaptation of a
config where SyncBN cannot work. The tools' shared start-up (config
loading with mmdet's flags, CPU process groups, runner building) is
:mod:`mmdetnas.apis.tool_setup`; their flags are parsed in
``tools/common.py``."""
import torch
from mmengine.config import Config
from mmengine.logging import print_log


def register_all_modules() -> None:
    """Register mmdet's and mmdetnas's modules (mmdet is the default
    scope, mmdetnas modules are named ``mmdetnas.X``)."""
    from mmdet.utils import register_all_modules as mmdet_register
    mmdet_register(init_default_scope=False)
    import mmdetnas.datasets  # noqa: F401
    import mmdetnas.engine  # noqa: F401
    import mmdetnas.evaluation  # noqa: F401
    import mmdetnas.models  # noqa: F401
    import mmdetnas.search  # noqa: F401


def sync_bn_to_bn(node) -> int:
    """Turn every ``SyncBN``/``MMSyncBN``/``TorchSyncBN`` norm config found
    in ``node`` (a config dict or list, walked recursively, changed in place)
    into ``BN``. Returns the number of norm configs changed."""
    n = 0
    if isinstance(node, dict):
        if node.get('type') in ('SyncBN', 'MMSyncBN', 'TorchSyncBN'):
            node['type'] = 'BN'
            n += 1
        for v in node.values():
            n += sync_bn_to_bn(v)
    elif isinstance(node, (list, tuple)):
        for v in node:
            n += sync_bn_to_bn(v)
    return n


def adapt_sync_bn(cfg: Config, launcher: str) -> int:
    """Turn SyncBN into BN where it cannot work.

    SyncBN needs several processes *and* a GPU; in a single-process run or
    on CPU (gloo) every ``SyncBN`` norm config becomes ``BN`` and a log line
    says so. Returns the number of configs changed.
    """
    if launcher != 'none' and torch.cuda.is_available():
        return 0
    n = sync_bn_to_bn(cfg._cfg_dict)
    if n:
        why = 'single-process run' if launcher == 'none' else 'no CUDA'
        print_log(
            f'SyncBN -> BN in {n} norm config(s) ({why}); SyncBN is kept '
            'for distributed GPU runs', logger='current')
    return n
