"""Supernet training under DDP on gloo (issue 21, item 10).

Two CPU ranks train the real quickstart classification supernet config
(``PathSamplerHook``, ``find_unused_parameters=True``, SGD with momentum and
weight decay) for a few iterations at 64x64, each iteration on its own
path, through an mmengine Runner per rank with the wrapper config
``tools/common.py`` gives a CPU ``--launcher pytorch`` run. A recording hook
(after the path sampler) notes the path of every iteration and snapshots the
choice blocks around it. Checked from the records, never from the code under
test:

1. both ranks ran the same path at every iteration (rank 0's: the ranks'
   samplers are seeded differently, so only the broadcast makes them agree);
2. a block that no iteration ran keeps its parameters and buffers bit for bit
   through the training iterations and has no optimizer state;
3. a block not run at iteration ``t`` is not moved by ``t``, also when it ran
   before (momentum buffer and weight decay must not leak into it);
4. every parameter is bit-identical on both ranks at the end;
5. a block run at ``t`` does change at ``t`` (the checks have power).

With ``weight_sharing='kernel'`` the k x k choices of a layer run one shared
7x7 block, so a block counts as selected when any choice routed to it was.

The run ends with the config's validation (BN recalibration of the evaluated
path, ``calib_iters`` batches sharded over the ranks); a separate test checks
what that leaves in the BN layers of the blocks off the evaluated path.
"""
import os
import os.path as osp
import socket

import pytest
import torch

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIG = osp.join(
    ROOT, 'configs', 'quickstart',
    'detnas_supernet_shufflenetv2-300m_quick_fashion-mnist.py')
WORLD = 2
ITERS = 5
SAMPLER_SEED = 1234  # rank r seeds its sampler with SAMPLER_SEED + r
# a kernel-entangled 7x7 block runs these choices (none: every choice alone)
KXK = ('shuffle_3x3', 'shuffle_5x5', 'shuffle_7x7')


def _free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def _block_of(choice, weight_sharing):
    """The block key that runs ``choice`` (derived from the documented
    layout, not from the backbone's routing table)."""
    if weight_sharing == 'kernel' and choice in KXK:
        return 'shuffle_7x7'
    return choice


def _build_cfg(data_root, work_dir, rank, weight_sharing):
    from mmengine.config import Config

    from mmdetnas.utils.setup_env import adapt_sync_bn
    cfg = Config.fromfile(CONFIG)
    assert cfg.find_unused_parameters is True
    cfg.merge_from_dict({
        'model.backbone.search_space': '300M',
        'model.backbone.weight_sharing': weight_sharing,
        'train_dataloader.batch_size': 2,
        'train_dataloader.num_workers': 0,
        'train_cfg.max_iters': ITERS,
        # validate (with BN recalibration) at the end, as the config does
        'train_cfg.val_interval': ITERS,
        'default_hooks.checkpoint': None,
        'default_hooks.logger.interval': 1,
        # per-rank model init and data: only DDP keeps the ranks equal
        'randomness': dict(seed=0, diff_rank_seed=True),
        'log_level': 'WARNING',
    })
    for dl in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        cfg[dl].dataset.data_root = data_root
    cfg.val_dataloader.num_workers = 0
    cfg.test_dataloader.num_workers = 0
    sampler_hooks = [h for h in cfg.custom_hooks
                     if h.type == 'mmdetnas.PathSamplerHook']
    assert len(sampler_hooks) == 1
    # different seeds per rank: equal paths prove the rank-0 broadcast
    sampler_hooks[0].sampler = dict(
        type='mmdetnas.UniformPathSampler', seed=SAMPLER_SEED + rank)
    opt = cfg.optim_wrapper.optimizer
    assert opt.type == 'SGD' and opt.momentum > 0 and opt.weight_decay > 0
    adapt_sync_bn(cfg, 'pytorch')
    cfg.launcher = 'pytorch'
    # as tools/common.py on a CPU: DDP rejects device_ids for CPU modules
    cfg.model_wrapper_cfg = dict(
        type='MMDistributedDataParallel', broadcast_buffers=False,
        find_unused_parameters=cfg.find_unused_parameters, device_ids=None)
    cfg.work_dir = work_dir
    return cfg


def _clone(module):
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def _diff(before, after, keys):
    """Keys of ``keys`` whose tensors differ (bit for bit)."""
    return [k for k in keys if not torch.equal(before[k], after[k])]


def _make_recorder():
    from mmengine.hooks import Hook
    from mmengine.model import is_model_wrapper

    class Recorder(Hook):
        """Path and choice-block changes of every training iteration, the
        optimizer state and parameters at the end, and the BN statistics
        the validation's recalibration leaves."""

        def _backbone(self, runner):
            model = runner.model
            assert is_model_wrapper(model), type(model)
            return model.module.backbone

        def _blocks(self, layers):
            """``(layer, block key) -> (param keys, buffer keys)`` in the
            state dict of ``layers``."""
            out = {}
            for i, layer in enumerate(layers):
                for key, block in layer.items():
                    p = [f'{i}.{key}.{n}' for n, _ in block.named_parameters()]
                    b = [f'{i}.{key}.{n}' for n, _ in block.named_buffers()]
                    out[(i, key)] = (p, b)
            return out

        def before_train(self, runner):
            layers = self._backbone(runner).layers
            self.blocks = self._blocks(layers)
            self.start = _clone(layers)
            self.paths, self.iters, self.val = [], [], []

        def before_train_iter(self, runner, batch_idx, data_batch=None):
            bb = self._backbone(runner)
            assert bb.arch is not None
            self.paths.append(tuple(bb.arch))
            self.before = _clone(bb.layers)

        def after_train_iter(self, runner, batch_idx, data_batch=None,
                             outputs=None):
            bb = self._backbone(runner)
            assert tuple(bb.arch) == self.paths[-1]
            now = _clone(bb.layers)
            self.iters.append({
                blk: (_diff(self.before, now, p), _diff(self.before, now, b))
                for blk, (p, b) in self.blocks.items()})
            # the blocks after the last training iteration (before the
            # validation that follows it)
            self.since_start = {
                blk: (_diff(self.start, now, p), _diff(self.start, now, b))
                for blk, (p, b) in self.blocks.items()}

        def before_val_epoch(self, runner):
            # after PathSamplerHook: the evaluated path is active and its BN
            # statistics recalibrated
            bb = self._backbone(runner)
            var_min = {}
            for i, layer in enumerate(bb.layers):
                for key, block in layer.items():
                    var_min[(i, key)] = min(
                        (float(m.running_var.min())
                         for m in block.modules()
                         if getattr(m, 'running_var', None) is not None),
                        default=None)
            self.val.append(dict(path=tuple(bb.arch), var_min=var_min))

        def after_train(self, runner):
            bb = self._backbone(runner)
            state = runner.optim_wrapper.optimizer.state
            with_state = set()
            for i, layer in enumerate(bb.layers):
                for key, block in layer.items():
                    for n, p in block.named_parameters():
                        if len(state.get(p, {})) > 0:
                            with_state.add(f'{i}.{key}.{n}')
            self.result = dict(
                paths=self.paths,
                iters=self.iters,
                since_start=self.since_start,
                val=self.val,
                with_opt_state=with_state,
                blocks=self.blocks,
                params={n: p.detach().clone() for n, p in
                        runner.model.module.named_parameters()},
                iter=runner.iter)

    return Recorder()


def _worker(rank, port, tmp, weight_sharing):
    import torch.distributed as dist
    torch.set_num_threads(1)
    os.environ.update(RANK=str(rank), LOCAL_RANK=str(rank),
                      WORLD_SIZE=str(WORLD), MASTER_ADDR='127.0.0.1',
                      MASTER_PORT=str(port))
    dist.init_process_group('gloo', init_method=f'tcp://127.0.0.1:{port}',
                            rank=rank, world_size=WORLD)
    try:
        from mmengine.runner import Runner
        cfg = _build_cfg(osp.join(tmp, 'data') + '/', osp.join(tmp, 'work'),
                         rank, weight_sharing)
        runner = Runner.from_cfg(cfg)
        recorder = _make_recorder()
        runner.register_hook(recorder, priority='LOW')
        runner.train()
        torch.save(recorder.result, osp.join(tmp, f'rank{rank}.pth'))
        dist.barrier()
    finally:
        dist.destroy_process_group()


def _expected_paths(space_name, seed):
    from mmdetnas.search import UniformPathSampler
    sampler = UniformPathSampler(space_name, seed=seed)
    return [sampler.sample() for _ in range(ITERS)]


@pytest.fixture(scope='module', params=['none', 'kernel'])
def ddp_run(request, tmp_path_factory):
    """Both ranks' records of one 2-process training run (one per
    ``weight_sharing``)."""
    import torch.multiprocessing as mp

    from tests.e2e_utils import make_tiny_imagenet
    weight_sharing = request.param
    tmp = tmp_path_factory.mktemp(f'ddp_supernet_{weight_sharing}')
    # 64x64 as the config's crop: at 32x32 the last stage is 1x1 and its BN
    # layers normalise 2 values per channel (batch 2), whose gradients blow
    # the weights up by orders of magnitude in a step
    make_tiny_imagenet(str(tmp / 'data'), per_class=4, size=64)
    mp.spawn(_worker, args=(_free_port(), str(tmp), weight_sharing),
             nprocs=WORLD, join=True)
    res = [torch.load(tmp / f'rank{r}.pth', weights_only=False)
           for r in range(WORLD)]
    return weight_sharing, res


@pytest.mark.slow
def test_ddp_supernet_training_two_ranks(ddp_run):
    weight_sharing, res = ddp_run
    r0, r1 = res
    assert r0['iter'] == r1['iter'] == ITERS
    assert len(r0['paths']) == len(r1['paths']) == ITERS

    # (1) the same path on both ranks at every iteration: rank 0's draws,
    # which rank 1's own sampler would not have made
    assert r0['paths'] == r1['paths']
    assert r0['paths'] == _expected_paths('300M', SAMPLER_SEED)
    assert r1['paths'] != _expected_paths('300M', SAMPLER_SEED + 1)
    assert len(set(r0['paths'])) == ITERS  # different paths

    paths = r0['paths']
    blocks = r0['blocks']
    selected_at = [{(i, _block_of(c, weight_sharing))
                    for i, c in enumerate(path)} for path in paths]
    ever = set().union(*selected_at)
    for sel in selected_at:
        assert sel <= set(blocks), sel - set(blocks)
    never = set(blocks) - ever
    # the checks below need blocks of every kind
    assert never, 'every block was selected: no check of untouched blocks'
    assert any(blk in selected_at[s] and blk not in selected_at[t]
               for blk in blocks for t in range(ITERS) for s in range(t)), \
        'no block selected before an iteration that skipped it'

    for r, rec in enumerate(res):
        # (2) never selected: bit-identical to the start (parameters and
        # BN buffers) after the training iterations, and no optimizer state
        # (at the very end)
        for blk in sorted(never):
            p_changed, b_changed = rec['since_start'][blk]
            assert not p_changed and not b_changed, (
                f'rank {r}: block {blk} was never selected but changed: '
                f'{p_changed + b_changed}')
            params = blocks[blk][0]
            stated = sorted(set(params) & rec['with_opt_state'])
            assert not stated, (f'rank {r}: never-selected block {blk} has '
                                f'optimizer state for {stated}')
        # every block that ran has optimizer state (momentum buffers)
        for blk in sorted(ever):
            assert set(blocks[blk][0]) & rec['with_opt_state'], (r, blk)
        for t in range(ITERS):
            for blk, (p_changed, b_changed) in rec['iters'][t].items():
                if blk in selected_at[t]:
                    # (5) a block that ran is updated (the test has power)
                    assert p_changed, (
                        f'rank {r}, iteration {t}: selected block {blk} '
                        'did not change')
                else:
                    # (3) a block that did not run is not moved, even when
                    # it ran before (no momentum / weight-decay leak)
                    earlier = [s for s in range(t) if blk in selected_at[s]]
                    assert not p_changed and not b_changed, (
                        f'rank {r}, iteration {t}: block {blk} not selected '
                        f'(selected at iterations {earlier}) changed: '
                        f'{p_changed + b_changed}')

    # (4) every parameter identical on both ranks (at the very end, after
    # the validation too)
    assert r0['params'].keys() == r1['params'].keys()
    differ = [n for n in r0['params']
              if not torch.equal(r0['params'][n], r1['params'][n])]
    assert not differ, f'parameters differ between the ranks: {differ[:10]}'


@pytest.mark.slow
def test_ddp_supernet_validation_keeps_off_path_bn_valid(ddp_run):
    """After the end-of-training validation (BN recalibration of the
    evaluated path sharded over the ranks), every BN layer still holds a
    valid variance, also in the blocks the evaluated path does not run."""
    weight_sharing, res = ddp_run
    for r, rec in enumerate(res):
        assert len(rec['val']) == 1, rec['val']
        val = rec['val'][0]
        assert val['path'] == res[0]['val'][0]['path']
        on_path = {(i, _block_of(c, weight_sharing))
                   for i, c in enumerate(val['path'])}
        bad = sorted(blk for blk, v in val['var_min'].items()
                     if blk not in on_path and not v > 0)
        assert not bad, (f'rank {r}: BN running_var <= 0 after validation in'
                         f' {len(bad)} blocks off the evaluated path, e.g. '
                         f'{bad[:4]}')
