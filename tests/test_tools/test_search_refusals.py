"""tools/search.py given bad inputs, as a careless user would (issue 22,
probes 2-5, 7 and 8 of the bad-input table): the error blames the value
that is wrong, a misspelt score_key is refused before any candidate is
scored, and a refused run leaves nothing in the work dir (no dated log
folder, no config copy, no search state) while keeping what was there."""
import os
import os.path as osp

import pytest
import torch
from mmengine.config import Config

from mmdetnas.registry import MODELS
from mmdetnas.utils.setup_env import register_all_modules
from tests.e2e_utils import coco_options, make_tiny_coco, run_tool

QS = 'configs/quickstart'
SEARCH = (
    f'{QS}/'
    f'detnas_search_faster-rcnn_shufflenetv2-300m_fpn_quick_neon-trees.py')
SMALL = [
    'train_cfg.max_generations=1', 'train_cfg.population_size=2',
    'train_cfg.num_mutation=1', 'train_cfg.num_crossover=1',
    'train_cfg.top_k=1', 'train_cfg.calib_iters=1',
    'train_cfg.calib_batch_size=1'
]


@pytest.fixture(scope='module')
def inputs(tmp_path_factory):
    """A tiny COCO set and an (untrained) supernet checkpoint of the search
    config's model, which check_checkpoint_matches accepts."""
    tmp = tmp_path_factory.mktemp('refusals')
    coco = make_tiny_coco(str(tmp / 'coco'))
    register_all_modules()
    cfg = Config.fromfile(SEARCH)
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    ckpt = str(tmp / 'supernet.pth')
    torch.save(dict(state_dict=model.state_dict(), meta=dict(iter=0)), ckpt)
    return coco, ckpt, tmp


def search(inputs, work_dir, *options, ckpt=None):
    coco, good, _ = inputs
    return run_tool([
        'tools/search.py', SEARCH, ckpt or good, '--work-dir',
        str(work_dir), '--cfg-options', *coco_options(coco), *SMALL,
        *options
    ], check=False)


def error(out) -> str:
    """The last line of stderr (the error the user reads)."""
    lines = [x for x in out.stderr.splitlines() if x.strip()]
    return lines[-1] if lines else ''


def with_earlier_files(work_dir):
    """A work dir used before: a note, an older run's dated log folder and
    an older config copy (the name the Runner dumps to)."""
    os.makedirs(work_dir / '20200101_000000')
    (work_dir / '20200101_000000' / 'old.log').write_text('old log\n')
    (work_dir / 'notes.txt').write_text('mine\n')
    (work_dir / osp.basename(SEARCH)).write_text('# an older copy\n')
    return sorted(os.listdir(work_dir))


def test_population_size_zero_is_blamed_on_population_size(inputs,
                                                            tmp_path):
    """Probe 8: it used to be blamed on num_mutation + num_crossover."""
    wd = tmp_path / 'wd'
    out = search(inputs, wd, 'train_cfg.population_size=0')
    assert out.returncode == 1
    last = error(out)
    assert 'train_cfg.population_size' in last and 'got 0' in last, last
    assert '>= 1' in last and 'num_crossover' not in last, last
    assert not wd.exists(), os.listdir(wd)


def test_children_beyond_the_population_name_all_three(inputs, tmp_path):
    """Probe 6 (and the order of the checks: population_size is valid, so
    the sum is what is blamed)."""
    out = search(inputs, tmp_path / 'wd', 'train_cfg.population_size=2',
                 'train_cfg.num_mutation=2', 'train_cfg.num_crossover=1')
    assert out.returncode == 1
    last = error(out)
    assert 'num_mutation (2) + num_crossover (1) = 3 exceeds ' \
        'population_size (2)' in last, last
    assert not (tmp_path / 'wd').exists()


def test_misspelt_score_key_is_refused_before_any_candidate(inputs,
                                                            tmp_path):
    """Probe 7: it was found after the first candidate was scored, and left
    search_state.pkl behind."""
    wd = tmp_path / 'wd'
    wd.mkdir()
    before = with_earlier_files(wd)
    out = search(inputs, wd, 'train_cfg.score_key=coco/bbox_mAP50')
    assert out.returncode == 1
    last = error(out)
    assert "'coco/bbox_mAP50'" in last and 'CocoMetric' in last, last
    assert "'coco/bbox_mAP_50'" in last and "'coco/bbox_mAP'" in last, last
    log = out.stdout + out.stderr
    assert 'new candidates' not in log  # no generation was proposed
    # nothing written, nothing of the earlier files lost or changed
    assert sorted(os.listdir(wd)) == before
    assert (wd / osp.basename(SEARCH)).read_text() == '# an older copy\n'
    assert (wd / '20200101_000000' / 'old.log').read_text() == 'old log\n'


@pytest.mark.parametrize('kind', ['random_bytes', 'truncated', 'other_model'])
def test_a_refused_checkpoint_leaves_nothing(inputs, tmp_path, kind):
    """Probes 2-4: the error was clear but the Runner's dated log folder
    and config copy stayed in the work dir."""
    _, good, _ = inputs
    bad = tmp_path / f'{kind}.pth'
    if kind == 'random_bytes':
        bad.write_bytes(os.urandom(100))
    elif kind == 'truncated':
        data = open(good, 'rb').read()
        bad.write_bytes(data[:len(data) // 2])
    else:  # the backbone alone, as a classification supernet holds it
        sd = torch.load(good, map_location='cpu', weights_only=False)
        sd = {k: v for k, v in sd['state_dict'].items()
              if k.startswith('backbone.')}
        torch.save(dict(state_dict=sd), bad)
    # a work dir that does not exist yet (two levels): nothing is left
    wd = tmp_path / 'new' / 'wd'
    out = search(inputs, wd, ckpt=str(bad))
    assert out.returncode == 1
    last = error(out)
    assert str(bad) in last, last
    if kind == 'other_model':
        assert 'does not fit the model' in last and 'neck' in last, last
    else:
        assert 'cannot read checkpoint' in last, last
        assert '..' not in last, last
    # one line, no traceback (probes 2 and 3 printed one)
    assert 'Traceback' not in out.stderr
    assert last.startswith('search.py: error: '), last
    assert not (tmp_path / 'new').exists(), os.listdir(tmp_path / 'new')
    # a used work dir keeps exactly what it held
    used = tmp_path / 'used'
    used.mkdir()
    before = with_earlier_files(used)
    out = search(inputs, used, ckpt=str(bad))
    assert out.returncode == 1
    assert sorted(os.listdir(used)) == before
    assert (used / osp.basename(SEARCH)).read_text() == '# an older copy\n'


@pytest.mark.parametrize('flops,expected', [
    ('(1,2)', "no path of the search space '300M-kernel' fits"),  # impossible
    ('[2,1]', 'min 2.0 > max 1.0'),  # malformed
])
def test_a_refused_constraint_leaves_nothing(inputs, tmp_path, flops,
                                             expected):
    """Probe 5: clear, but the log folder and config copy stayed."""
    wd = tmp_path / 'wd'
    out = search(inputs, wd, f'train_cfg.flops={flops}')
    assert out.returncode == 1
    last = error(out)
    assert expected in last and 'flops' in last, last
    assert not wd.exists(), os.listdir(wd)


def test_an_accepted_search_keeps_its_log_and_outputs(inputs, tmp_path):
    """The counterpart: the config's own score_key passes the early check
    and a search that ran keeps its dated log folder and config copy."""
    wd = tmp_path / 'wd'
    out = search(inputs, wd)
    assert out.returncode == 0, error(out)
    names = os.listdir(wd)
    assert any(n[:8].isdigit() and osp.isdir(wd / n) for n in names), names
    for name in (osp.basename(SEARCH), 'search_state.pkl',
                 'candidates.jsonl', 'best_arch.yaml'):
        assert name in names, names
    # and no model checkpoint: the search trains nothing (mmengine's
    # save_last wrote a copy of the supernet as iter_<n>.pth)
    assert not [n for n in names if n.endswith('.pth')
                or n == 'last_checkpoint'], names
    # a new search there with a FLOPs range no path meets is refused
    # before the finished search is moved aside: it stays where it was
    state = (wd / 'search_state.pkl').read_bytes()
    out = search(inputs, wd, 'train_cfg.flops=(1,2)')
    assert out.returncode == 1
    assert "no path of the search space '300M-kernel' fits" in error(out)
    assert sorted(os.listdir(wd)) == sorted(names)
    assert (wd / 'search_state.pkl').read_bytes() == state


def test_the_ranking_tool_leaves_no_runner_files_when_refused(inputs,
                                                              tmp_path):
    """A supernet checkpoint of another model given to the ranking tool:
    refused in one line, and its scoring Runner's dated log folder and
    config copy (under WORK_DIR/supernet_eval) are removed again."""
    coco, _, tmp = inputs
    other = tmp / 'classifier.pth'
    if not other.exists():
        torch.save(dict(state_dict={'head.fc.weight': torch.zeros(2, 2)}),
                   str(other))
    wd = tmp_path / 'ranking'
    out = run_tool([
        'tools/analysis_tools/ranking_correlation.py', SEARCH, str(other),
        '--subnet-config', SEARCH.replace('detnas_search_', 'detnas_subnet_'),
        '--work-dir', str(wd), '--num-archs', '2', '--arch',
        ','.join(['0'] * 20), ','.join(['1'] * 20), '--print-commands',
        '--cfg-options', *coco_options(coco), *SMALL
    ], check=False)
    assert out.returncode == 1
    assert "'" + str(other) + "'" in error(out), error(out)
    assert 'Traceback' not in out.stderr
    leftover = wd / 'supernet_eval'
    assert not leftover.exists() or not os.listdir(leftover), \
        os.listdir(leftover)


def test_the_checkpoint_argument_follows_the_search_loop(inputs, tmp_path):
    """One tool for every search: a DetNAS search config without its
    supernet checkpoint, and an SM-NAS config given one, are refused in one
    line naming what the loop expects, leaving nothing."""
    coco, good, _ = inputs
    wd = tmp_path / 'detnas'
    out = run_tool(['tools/search.py', SEARCH, '--work-dir', str(wd),
                    '--cfg-options', *coco_options(coco), *SMALL],
                   check=False)
    assert out.returncode != 0
    assert 'EvolutionSearchLoop scores paths of a trained supernet: give ' \
        'its checkpoint' in error(out), out.stderr[-2000:]
    assert 'Traceback' not in out.stderr
    assert not wd.exists()
    wd = tmp_path / 'smnas'
    out = run_tool([
        'tools/search.py',
        'configs/smnas/smnas_structural_faster-rcnn_mixed_fpn_quick_neon-trees'
        '.py', good, '--work-dir', str(wd)], check=False)
    assert out.returncode != 0
    assert 'StructuralSearchLoop trains every candidate itself and takes ' \
        f'no checkpoint, got {good!r}' in error(out), out.stderr[-2000:]
    assert not wd.exists()
    # a config whose train_cfg is no search loop
    out = run_tool(['tools/search.py',
                    'configs/smnas/smnas_scratch_faster-rcnn_r18-gnws_fpn_'
                    'quick_neon-trees.py', '--work-dir', str(wd)],
                   check=False)
    assert 'train_cfg.type must be a search loop' in error(out)
    assert "got 'IterBasedTrainLoop'" in error(out)
    assert not wd.exists()
