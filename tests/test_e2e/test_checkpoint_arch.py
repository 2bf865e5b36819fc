"""tools/test.py and tools/train.py (load_from) with a subnet checkpoint,
tried as a user who forgets the architecture or gives another one (issue
22's two silent wrong results: mAP of a partly loaded network, exit 0)."""
import re

import pytest
import torch

from tests.e2e_utils import (coco_options, make_tiny_coco, run_tool,
                             run_tools)

pytestmark = pytest.mark.slow

SUBNET = ('configs/quickstart/'
          'detnas_subnet_faster-rcnn_shufflenetv2-300m_fpn_quick_neon-trees.py')
# a searched-looking path, not the config's default (COCO-FPN-300M)
ARCH = ['shuffle_3x3', 'shuffle_xception', 'shuffle_5x5', 'shuffle_7x7'] * 5
OTHER = ['shuffle_3x3'] * 20


@pytest.fixture(scope='module')
def trained(tmp_path_factory):
    """A subnet detector of ARCH trained 2 iterations, as re-training a
    searched subnet does."""
    tmp = tmp_path_factory.mktemp('ckarch')
    coco = make_tiny_coco(str(tmp / 'coco'))
    wd = tmp / 'subnet'
    run_tool(['tools/train.py', SUBNET, '--work-dir', str(wd),
              '--cfg-options', *coco_options(coco),
              'model.backbone.arch=' + ','.join(ARCH),
              'model.backbone.init_cfg=None', 'train_cfg.max_iters=2',
              'train_cfg.val_interval=100',
              'default_hooks.checkpoint.interval=2'])
    return coco, tmp, str(wd / 'iter_2.pth')


def run_test(coco, ckpt, work_dir, *options, check=True):
    return run_tool(['tools/test.py', SUBNET, ckpt, '--work-dir',
                     str(work_dir), '--cfg-options', *coco_options(coco),
                     *options], check=check)


def metrics(out):
    """The metrics of the test's last ``Iter(test)`` line."""
    line = [x for x in (out.stdout + out.stderr).splitlines()
            if 'Iter(test)' in x and 'coco/bbox_mAP' in x][-1]
    return dict(re.findall(r'(coco/\S+): (\S+)', line))


def test_the_checkpoint_records_its_architecture(trained):
    _, _, ckpt = trained
    meta = torch.load(ckpt, map_location='cpu', weights_only=False)['meta']
    assert meta['arch'] == ARCH
    assert meta['search_space']['name'] == '300M'


def test_a_forgotten_architecture_is_taken_from_the_checkpoint(
        trained, tmp_path):
    coco, _, ckpt = trained

    def test_args(work_dir, *options):
        return ['tools/test.py', SUBNET, ckpt, '--work-dir', str(work_dir),
                '--cfg-options', *coco_options(coco), *options]

    # the two tests side by side (independent runs)
    right, forgot = run_tools([
        test_args(tmp_path / 'a', 'model.backbone.arch=' + ','.join(ARCH)),
        test_args(tmp_path / 'b'),  # config default: COCO-FPN
    ])
    log = forgot.stdout + forgot.stderr
    assert 'records the architecture ' + ','.join(ARCH) in log
    assert 'do not match exactly' not in log
    assert metrics(forgot) == metrics(right)


def test_another_architecture_is_refused_naming_the_right_one(
        trained, tmp_path):
    coco, _, ckpt = trained
    out = run_test(coco, ckpt, tmp_path / 'c',
               'model.backbone.arch=' + ','.join(OTHER), check=False)
    assert out.returncode == 1
    assert 'model.backbone.arch=' + ','.join(ARCH) in out.stderr
    assert 'Iter(test)' not in out.stdout + out.stderr
    # one clear line, no traceback, nothing written
    assert 'Traceback' not in out.stderr
    assert out.stderr.strip().splitlines()[-1].startswith(
        'test.py: error: checkpoint ')
    assert not (tmp_path / 'c').exists()


def test_an_old_checkpoint_without_meta_is_read_from_its_keys(
        trained, tmp_path):
    """Checkpoints written before the meta (and converted reference
    subnets) hold one choice block per layer: the architecture is read
    from the keys and, not recorded, is not built on its own: the default
    is refused with the option that fits (probe 22 of the issue)."""
    coco, _, ckpt = trained
    state = torch.load(ckpt, map_location='cpu', weights_only=False)
    for k in ('arch', 'search_space'):
        state['meta'].pop(k)
    old = str(tmp_path / 'old.pth')
    torch.save(state, old)
    out = run_test(coco, old, tmp_path / 'd', check=False)
    assert out.returncode == 1
    last = out.stderr.strip().splitlines()[-1]
    assert 'holds the weights of the architecture ' + ','.join(ARCH) in last
    assert '(the config default)' in last
    assert 'Use --cfg-options model.backbone.arch=' + ','.join(ARCH) in last
    # the option it names fits
    run_test(coco, old, tmp_path / 'e',
             'model.backbone.arch=' + ','.join(ARCH))


def test_fine_tuning_from_a_subnet_checkpoint_checks_it_too(
        trained, tmp_path):
    coco, _, ckpt = trained
    out = run_tool(['tools/train.py', SUBNET, '--work-dir',
                    str(tmp_path / 'ft'), '--cfg-options',
                    *coco_options(coco), f'load_from={ckpt}',
                    'model.backbone.arch=' + ','.join(OTHER),
                    'model.backbone.init_cfg=None', 'train_cfg.max_iters=1'],
                   check=False)
    assert out.returncode != 0
    assert 'model.backbone.arch=' + ','.join(ARCH) in out.stderr
    assert not (tmp_path / 'ft' / 'iter_1.pth').exists()


def test_a_supernet_checkpoint_is_refused_with_the_way_out(tmp_path):
    """The supernet's weights hold every choice: testing them as a subnet
    would test the config's architecture by chance. Refused, with the
    export command."""
    from mmengine.config import Config

    from mmdet.registry import MODELS
    from mmdetnas.utils.setup_env import register_all_modules
    register_all_modules()
    cfg = Config.fromfile(
        'configs/quickstart/'
        'detnas_supernet_faster-rcnn_shufflenetv2-300m_fpn_quick_neon-'
        'trees.py')
    cfg.model.backbone.init_cfg = None
    from mmdetnas.utils.setup_env import adapt_sync_bn
    adapt_sync_bn(cfg, 'none')
    model = MODELS.build(cfg.model)
    path = str(tmp_path / 'supernet.pth')
    # the meta a supernet training writes (RecordArchHook: arch None). A
    # kernel-entangled supernet of k x k choices only, as this one, has
    # the keys of an all-7x7 subnet: without the meta its largest-kernel
    # path would be tested (docs/design.md)
    from mmdetnas.utils.arch_meta import model_arch_meta
    meta = model_arch_meta(model)
    assert meta['arch'] is None
    torch.save(dict(state_dict=model.state_dict(), meta=meta), path)
    coco = make_tiny_coco(str(tmp_path / 'coco'))
    (tmp_path / 'f').mkdir()
    (tmp_path / 'f' / 'mine.txt').write_text('kept')
    out = run_test(coco, path, tmp_path / 'f', check=False)
    assert out.returncode == 1
    assert 'supernet' in out.stderr and 'export_subnet.py' in out.stderr
    # refused after the Runner was built: its log folder and config copy
    # are removed, what was there before stays
    assert [p.name for p in (tmp_path / 'f').iterdir()] == ['mine.txt']
    # --debug shows where it came from
    out = run_test(coco, path, tmp_path / 'g', '--debug', check=False)
    assert out.returncode == 1 and 'Traceback' in out.stderr


def test_a_misspelt_option_ends_in_one_line_naming_it(trained, tmp_path):
    """``model.backbone.archh=...``: the model does not build; one line
    naming the key, no traceback, nothing left in the work dir."""
    coco, _, ckpt = trained
    out = run_test(coco, ckpt, tmp_path / 'h', 'model.backbone.archh=x',
                   check=False)
    assert out.returncode == 1
    last = out.stderr.strip().splitlines()[-1]
    assert last.startswith('test.py: error:') and "'archh'" in last
    # and what was expected: the backbone's arguments, the closest first
    assert "DetNASShuffleNetV2 takes ['search_space', 'arch', " in last, last
    assert "did you mean 'arch'?" in last and '--cfg-options' in last
    assert 'Traceback' not in out.stderr
    assert not (tmp_path / 'h').exists()


@pytest.mark.parametrize('arch, words', [
    (','.join(['4'] * 20), 'out of range'),
    (','.join(['shuffle_3x3'] * 3), 'has 3 layers'),
])
def test_an_invalid_architecture_is_named(trained, tmp_path, arch, words):
    """Probes 18-20: the user's own architecture is invalid: its error,
    not a mismatch with the checkpoint."""
    coco, _, ckpt = trained
    out = run_test(coco, ckpt, tmp_path / 'i', 'model.backbone.arch=' + arch,
                   check=False)
    assert out.returncode == 1
    last = out.stderr.strip().splitlines()[-1]
    assert last.startswith('test.py: error: model.backbone.arch:')
    assert words in last


SCRATCH = ('configs/smnas/'
           'smnas_scratch_faster-rcnn_r18-gnws_fpn_quick_neon-trees.py')
# the config builds r18_64_11-21-21-21 (stage widths 64/128/256/512); this
# code's widths are 64/64/128/256 (a '2' doubles the width of its block)
CODE = 'r18_64_11-11-21-21'


def test_an_smnas_checkpoint_is_tested_with_its_code(tmp_path):
    """A detector with an SM-NAS backbone code other than the config's:
    tools/test.py takes the code (and the neck's input channels) from the
    checkpoint's meta when the user gives none, and refuses a conflicting
    code naming the two options that fit."""
    from mmengine.config import Config

    from mmdetnas.registry import MODELS
    from mmdetnas.utils.arch_meta import model_arch_meta
    from mmdetnas.utils.setup_env import register_all_modules
    register_all_modules()
    coco = make_tiny_coco(str(tmp_path / 'coco'))
    cfg = Config.fromfile(SCRATCH)
    cfg.model.backbone.arch = CODE
    cfg.model.neck.in_channels = [64, 64, 128, 256]
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    ckpt = str(tmp_path / 'code.pth')
    torch.save(dict(state_dict=model.state_dict(),
                    meta=model_arch_meta(model)), ckpt)

    def test(work_dir, *options):
        return run_tool(['tools/test.py', SCRATCH, ckpt, '--work-dir',
                         str(tmp_path / work_dir), '--cfg-options',
                         *coco_options(coco), *options], check=False)

    out = test('given', 'model.backbone.arch=r18_64_11-21-21-21')
    assert out.returncode == 1
    last = out.stderr.strip().splitlines()[-1]
    assert (f'model.backbone.arch={CODE} '
            'model.neck.in_channels=[64,64,128,256]') in last, last
    assert not (tmp_path / 'given').exists()
    out = test('forgot')
    log = out.stdout + out.stderr
    assert out.returncode == 0, log[-2000:]
    assert f'records the backbone code {CODE}' in log
    assert 'do not match exactly' not in log
    assert 'Iter(test)' in log
