"""Re-run the forty "bad input" probes on the outputs of a quickstart.

The probes are those of ``shared/design/bad-input-probes.md`` (what a
careless new user types), listed with what each should give now in
``docs/bad_inputs.md``. This script runs every one of them, as a user would,
on the real checkpoints, search results and data of a finished quickstart
(``tools/quickstart.py [--tiny] --work-dir DIR``; its data lies under the
repository's ``data/``), each as a subprocess of the tool with
``OMP_NUM_THREADS=1`` and a 600 s timeout, and records for each:

* the exit status (``timeout`` when it hung, ``-9`` when this script killed
  it on purpose, probe 38);
* the last non-empty line of stderr (the message the user reads);
* whether a Python traceback was printed;
* what the run left in its work dir (or output folder) that was not there
  before (dated log folders are shown as ``<date>/``).

Probes that run a search use tiny settings (1 generation of 2 candidates,
1 calibration batch of 1 image), except where the probe is about the
settings (6 and 37 keep the config's 3 mutations + 3 crossovers; 38-40 use a
search of 2 generations of 4 = 8 candidates, killed with SIGKILL once 6 are
in candidates.jsonl, then run again with and without ``--resume`` and
compared with an uninterrupted run of the same settings). The SM-NAS probes
31-34 write small configs derived (``_base_``) from
``configs/smnas/smnas_structural_faster-rcnn_mixed_fpn_quick_neon-trees.py``
into the out dir, with 4 training iterations per candidate. Probe 11 (a
read-only work dir) needs file modes to hold: run as root, it runs as the
user ``nobody``, or, when ``nobody`` cannot run this Python (a venv whose
interpreter lies under /root), as root without CAP_DAC_OVERRIDE
(``setpriv``); it is skipped when neither works. Probe 22 runs on the
checkpoint as the quickstart wrote it (its meta records the architecture)
and, as 22b, on a copy without that meta, as checkpoints were written when
the table was made.

Writes ``OUT/probes.md`` (the table, then the extra checks of probes 10, 21,
22, 34 and 38-40) and prints it; every probe's output is kept in
``OUT/logs/NN.log`` and its inputs and work dir in ``OUT/pNN/``.

Run from anywhere (the tools run from the repository root)::

    .venv/bin/python benchmarks/bad_input_probes.py \\
        --quickstart-dir /tmp/probes/qs --out-dir /tmp/probes/out

``--only 12-17 21`` runs some probes only (numbers or ranges); OUT is
emptied of the chosen probes' folders first, never of anything else.
"""
import argparse
import glob
import json
import os
import os.path as osp
import pickle
import random
import re
import shutil
import signal
import subprocess
import sys
import time

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
PY = sys.executable
TIMEOUT = 600

QS = 'configs/quickstart'
DET = 'faster-rcnn_shufflenetv2-300m_fpn_quick_neon-trees.py'
SEARCH = f'{QS}/detnas_search_{DET}'
SUPERNET = f'{QS}/detnas_supernet_{DET}'
SUBNET = f'{QS}/detnas_subnet_{DET}'
STRUCTURAL = ('configs/smnas/'
              'smnas_structural_faster-rcnn_mixed_fpn_quick_neon-trees.py')
TRAIN_ANN = 'data/neon_trees/annotations/supernet_train.json'

# a search of one generation of two candidates
TINY = [
    'train_cfg.max_generations=1', 'train_cfg.population_size=2',
    'train_cfg.num_mutation=1', 'train_cfg.num_crossover=1',
    'train_cfg.top_k=1', 'train_cfg.calib_iters=1',
    'train_cfg.calib_batch_size=1'
]
# the same without the children: the config's 3 + 3 stay
TINY_KEEP_CHILDREN = [o for o in TINY if 'num_' not in o]
# probes 38-40: two generations of four, 8 candidates
EIGHT = [
    'train_cfg.max_generations=2', 'train_cfg.population_size=4',
    'train_cfg.num_mutation=1', 'train_cfg.num_crossover=1',
    'train_cfg.top_k=2', 'train_cfg.calib_iters=1',
    'train_cfg.calib_batch_size=1'
]
KILL_AFTER = 6
# SM-NAS probes: 4 training iterations per candidate
STRUCT_TINY = ['train_cfg.candidate_train_cfg.max_iters=4']

BASELINE_300M = ['shuffle_3x3'] * 20  # a valid path of the 300M space
# official COCO-FPN-1.3G (40 layers, DetNAS 1.3G space)
FPN_13G = [
    0, 0, 3, 1, 2, 1, 0, 2, 0, 3, 1, 2, 3, 3, 2, 0, 2, 1, 1, 3, 2, 0, 2, 2,
    2, 1, 3, 1, 0, 3, 3, 3, 1, 3, 3, 3, 3, 3, 3, 3
]
CHOICES_300M = ['shuffle_3x3', 'shuffle_5x5', 'shuffle_7x7',
                'shuffle_xception']
TIMING_FIELDS = ('calib_seconds', 'eval_seconds')
DATED = re.compile(r'\d{8}_\d{6}')


# ------------------------------------------------------------------ helpers
def write_arch_file(path, arch, space):
    """An architecture file as tools/quickstart.py writes them."""
    lines = [f'search_space: {space}', 'arch:'] + [f'- {c}' for c in arch]
    write_text(path, '\n'.join(lines) + '\n')
    return path


def write_text(path, text):
    os.makedirs(osp.dirname(path), exist_ok=True)
    with open(path, 'w') as f:
        f.write(text)
    return path


def read_jsonl(path):
    if not osp.isfile(path):
        return []
    with open(path) as f:
        return [json.loads(x) for x in f if x.strip()]


def without_timing(records):
    return [{k: v for k, v in r.items() if k not in TIMING_FIELDS}
            for r in records]


def snapshot(folder):
    """Every path under ``folder`` (relative, folders ending in '/')."""
    found = set()
    if not osp.isdir(folder):
        return found
    for base, dirs, files in os.walk(folder):
        rel = osp.relpath(base, folder)
        for d in dirs:
            found.add(osp.normpath(osp.join(rel, d)) + '/')
        for f in files:
            found.add(osp.normpath(osp.join(rel, f)))
    return found


def new_entries(before, after):
    """The top-most paths of ``after`` not in ``before`` (a new folder is
    shown, not its content)."""
    new = after - before
    top = []
    for p in sorted(new):
        parent = osp.dirname(p.rstrip('/'))
        if parent and parent + '/' in new:
            continue
        top.append(DATED.sub('<date>', p))
    return top


def last_line(text):
    lines = [x.strip() for x in text.splitlines() if x.strip()]
    return lines[-1] if lines else ''


def cell(text, limit=400):
    """Text for a markdown table cell."""
    text = text.replace('|', '\\|').replace('\n', ' ')
    return text if len(text) <= limit else text[:limit - 3] + '...'


def tool_env(extra=None):
    env = dict(os.environ, OMP_NUM_THREADS='1', PYTHONWARNINGS='ignore')
    env.update(extra or {})
    return env


def kill_group(proc):
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


# ------------------------------------------------------------------- probes
class Probes:
    """Runs the probes and collects one table row per command."""

    def __init__(self, qs_dir, out_dir):
        from mmdetnas.utils.run_metrics import last_checkpoint
        self.qs = osp.abspath(qs_dir)
        self.out = osp.abspath(out_dir)
        self.rows = []
        self.checks = []  # (probe, text) of the extra checks
        os.makedirs(osp.join(self.out, 'logs'), exist_ok=True)
        self.supernet_ckpt = last_checkpoint(osp.join(self.qs, 'supernet'))
        self.cls_ckpt = last_checkpoint(osp.join(self.qs, 'pretrain'))
        self.subnet_ckpt = last_checkpoint(
            osp.join(self.qs, 'retrain_searched'))
        self.best_arch = osp.join(self.qs, 'search', 'best_arch.yaml')

    def dir(self, num, *parts):
        return osp.join(self.out, f'p{num}', *parts)

    def check(self, num, text):
        self.checks.append((num, text))
        print(f'  check {num}: {text}', flush=True)

    # --------------------------------------------------------------- one run
    def run(self, num, label, args, work_dir, prefix=(), env=None):
        """Run ``python ARGS`` (after ``prefix``, e.g. a user switch) from
        the repository root and add its row; returns the row (with the
        whole output under 'output')."""
        before = snapshot(work_dir)
        cmd = [*prefix, PY, *args]
        log = osp.join(self.out, 'logs', f'{num}.log')
        print(f'[{num}] {label}\n  $ {" ".join(cmd)}', flush=True)
        t0 = time.time()
        proc = subprocess.Popen(
            cmd, cwd=ROOT, env=tool_env(env), stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True, start_new_session=True)
        try:
            out, err = proc.communicate(timeout=TIMEOUT)
            code = proc.returncode
        except subprocess.TimeoutExpired:
            kill_group(proc)
            out, err = proc.communicate()
            code = 'timeout'
        return self._row(num, label, cmd, work_dir, before, code, out, err,
                         time.time() - t0, log)

    def _row(self, num, label, cmd, work_dir, before, code, out, err,
             seconds, log):
        with open(log, 'w') as f:
            f.write(f'$ {" ".join(cmd)}\n# exit {code}, {seconds:.1f} s\n'
                    f'----- stdout\n{out}\n----- stderr\n{err}\n')
        left = new_entries(before, snapshot(work_dir))
        row = dict(
            num=num, label=label, exit=code,
            last=last_line(err) or ('(stdout) ' + last_line(out)),
            traceback='Traceback (most recent call last)' in out + err,
            left=', '.join(left) if left else 'nothing',
            seconds=seconds, output=out + err)
        self.rows.append(row)
        print(f'  -> exit {code} in {seconds:.0f} s, traceback: '
              f'{row["traceback"]}\n  -> {row["last"][:300]}\n'
              f'  -> left: {row["left"][:300]}', flush=True)
        return row

    def skip(self, num, label, why):
        self.rows.append(dict(num=num, label=label, exit='-', last=why,
                              traceback=False, left='-', seconds=0.0,
                              output=''))
        print(f'[{num}] {label}: {why}', flush=True)

    # ---------------------------------------------------------- tools
    def search(self, num, label, ckpt, options, work_dir, extra=()):
        return self.run(num, label, [
            'tools/search.py', SEARCH, ckpt, '--work-dir', work_dir,
            *extra, '--cfg-options', *options
        ], work_dir)

    def get_flops(self, num, label, arch):
        wd = self.dir(num)
        return self.run(num, label, [
            'tools/analysis_tools/get_flops.py', SUPERNET, '--arch', arch
        ], wd)

    def test(self, num, label, ckpt, options=(), config=SUBNET, wd=None):
        wd = wd or self.dir(num, 'wd')
        opts = ['--cfg-options', *options] if options else []
        return self.run(num, label, [
            'tools/test.py', config, ckpt, '--work-dir', wd, *opts
        ], wd)

    def export(self, num, label, arch):
        wd = self.dir(num)
        return self.run(num, label, [
            'tools/model_converters/export_subnet.py', self.supernet_ckpt,
            arch, osp.join(wd, 'subnet.pth')
        ], wd)

    def convert(self, num, label, src):
        wd = self.dir(num)
        return self.run(num, label, [
            'tools/model_converters/detnas_to_mmdetnas.py', src,
            osp.join(wd, 'converted.pth')
        ], wd)

    def structural(self, num, label, config, work_dir, extra=()):
        return self.run(num, label, [
            'tools/search.py', config, '--work-dir', work_dir,
            *extra, '--cfg-options', *STRUCT_TINY
        ], work_dir)

    def derived_config(self, num, body):
        """A config file in OUT/pNN that takes the structural quickstart
        config as its base."""
        text = (f"_base_ = '{osp.join(ROOT, STRUCTURAL)}'\n"
                f'{body.strip()}\n')
        return write_text(self.dir(num, 'config.py'), text)

    # ============================================================ 1 - 11
    def probe_1(self):
        self.search(1, 'search: missing checkpoint path',
                    self.dir(1, 'no_such_supernet.pth'), TINY,
                    self.dir(1, 'wd'))

    def probe_2(self):
        bad = self.dir(2, 'random.pth')
        os.makedirs(self.dir(2), exist_ok=True)
        with open(bad, 'wb') as f:
            f.write(bytes(random.Random(0).getrandbits(8)
                          for _ in range(100)))
        self.search(2, 'search: 100 random bytes as checkpoint', bad, TINY,
                    self.dir(2, 'wd'))

    def probe_3(self):
        bad = self.dir(3, 'half.pth')
        os.makedirs(self.dir(3), exist_ok=True)
        with open(self.supernet_ckpt, 'rb') as f:
            data = f.read()
        with open(bad, 'wb') as f:
            f.write(data[:len(data) // 2])
        self.search(3, 'search: first half of the supernet checkpoint',
                    bad, TINY, self.dir(3, 'wd'))

    def probe_4(self):
        self.search(4, 'search: the classification supernet checkpoint '
                    f'({osp.relpath(self.cls_ckpt, self.qs)})',
                    self.cls_ckpt, TINY, self.dir(4, 'wd'))

    def probe_5(self):
        self.search(5, 'search: train_cfg.flops="(1,2)"',
                    self.supernet_ckpt, TINY + ['train_cfg.flops=(1,2)'],
                    self.dir(5, 'wd'))

    def probe_6(self):
        self.search(6, "search: population_size=2 with the config's 3 + 3 "
                    'children', self.supernet_ckpt,
                    TINY_KEEP_CHILDREN + ['train_cfg.population_size=2'],
                    self.dir(6, 'wd'))

    def probe_7(self):
        self.search(7, 'search: train_cfg.score_key=coco/bbox_mAP50',
                    self.supernet_ckpt,
                    TINY + ['train_cfg.score_key=coco/bbox_mAP50'],
                    self.dir(7, 'wd'))

    def probe_8(self):
        self.search(8, 'search: population_size=0', self.supernet_ckpt,
                    TINY + ['train_cfg.population_size=0'],
                    self.dir(8, 'wd'))

    def probe_9(self):
        zeros = ['train_cfg.population_size=0', 'train_cfg.num_mutation=0',
                 'train_cfg.num_crossover=0', 'train_cfg.top_k=0']
        self.search(9, 'search: population, mutation, crossover, top_k '
                    'all 0', self.supernet_ckpt, TINY + zeros,
                    self.dir(9, 'wd'))

    def probe_10(self):
        wd = self.dir(10, 'wd')
        os.makedirs(wd)
        row = self.search(10, 'search: --resume in an empty dir',
                          self.supernet_ckpt, TINY, wd, ['--resume'])
        said = [x.split(' - ')[-1] for x in row['output'].splitlines()
                if 'resum' in x.lower() and 'mmengine' in x]
        n = len(read_jsonl(osp.join(wd, 'candidates.jsonl')))
        self.check(10, f'{n} candidates scored; lines on resuming: '
                   f'{said or "none"}')

    def probe_11(self):
        label = 'search: read-only work dir'
        wd = self.dir(11, 'wd')
        os.makedirs(wd)
        prefix, how = self.unprivileged()
        if prefix is None:
            return self.skip(11, label, 'skipped (root)')
        os.chmod(wd, 0o555)
        try:
            self.run(11, f'{label} ({how})', [
                'tools/search.py', SEARCH, self.supernet_ckpt, '--work-dir',
                wd, '--cfg-options', *TINY
            ], wd, prefix=prefix)
        finally:
            os.chmod(wd, 0o755)

    def unprivileged(self):
        """A command prefix under which file modes hold, and its name.

        Not root: none needed. Root: the user ``nobody`` (runuser or
        setpriv) when it can run this Python; else root without the
        capabilities that override file modes (``setpriv --bounding-set
        -dac_override,-dac_read_search``), e.g. when the interpreter lies
        under /root; ``(None, None)`` when neither is possible."""
        if os.geteuid() != 0:
            return (), 'as a non-root user'
        home = self.dir(11, 'home')
        os.makedirs(home, exist_ok=True)
        os.chmod(home, 0o777)
        env = ('env', f'HOME={home}', f'MPLCONFIGDIR={home}',
               'OMP_NUM_THREADS=1')
        tries = []
        if shutil.which('runuser'):
            tries.append((('runuser', '-u', 'nobody', '--', *env),
                          'run as nobody'))
        if shutil.which('setpriv'):
            tries.append((('setpriv', '--reuid=nobody', '--regid=nogroup',
                           '--clear-groups', *env), 'run as nobody'))
            tries.append((('setpriv', '--bounding-set=-dac_override,'
                           '-dac_read_search', '--'),
                          'root without CAP_DAC_OVERRIDE: nobody cannot '
                          'run this Python'))
        for prefix, how in tries:
            ok = subprocess.run([*prefix, PY, '-c', 'pass'], cwd=ROOT,
                                capture_output=True).returncode == 0
            if ok:
                return prefix, how
        return None, None

    # ========================================================== 12 - 20
    def arch_files(self, num):
        """The empty file and the file holding a bare list of names."""
        empty = write_text(self.dir(num, 'empty.yaml'), '')
        bare = write_text(self.dir(num, 'list.yaml'),
                          ''.join(f'- {c}\n' for c in BASELINE_300M))
        return empty, bare

    def probe_12_17(self):
        n = 20
        space13 = write_arch_file(
            self.dir('15', 'coco_fpn_1.3g.yaml'),
            [CHOICES_300M[i] for i in FPN_13G], '1.3G')
        empty, bare = self.arch_files('16-17')
        cases = [
            ('12', 'get_flops.py --arch: wrong length (0,1,2)', '0,1,2'),
            ('13', 'get_flops.py --arch: unknown name (shuffle_9x9 at '
             'layer 0)', ','.join(['shuffle_9x9'] + ['shuffle_3x3'] *
                                  (n - 1))),
            ('14', 'get_flops.py --arch: index 3 of the kernel space '
             '(3,0,0,...)', ','.join(['3'] + ['0'] * (n - 1))),
            ('15', 'get_flops.py --arch: a 1.3G arch file (COCO-FPN-1.3G)',
             space13),
            ('16', 'get_flops.py --arch: an empty file', empty),
            ('17', 'get_flops.py --arch: a file holding a list of strings',
             bare),
        ]
        for num, label, arch in cases:
            self.get_flops(num, label, arch)

    def probe_18_20(self):
        empty, bare = self.arch_files('19-20')
        cases = [
            ('18', 'test.py model.backbone.arch: index 4 (4,4,...)',
             ','.join(['4'] * 20)),
            ('19', 'test.py model.backbone.arch: an empty file', empty),
            ('20', 'test.py model.backbone.arch: a file holding a list of '
             'strings', bare),
        ]
        for num, label, arch in cases:
            self.test(num, label, self.subnet_ckpt,
                      [f'model.backbone.arch={arch}'])

    # ========================================================== 21 - 30
    def searched_arch(self):
        with open(self.best_arch) as f:
            return [x.strip()[2:] for x in f if x.strip().startswith('- ')]

    def reference_map(self):
        """mAP@0.5 of the quickstart's own test of the searched subnet."""
        return self.test_map(osp.join(self.qs, 'test_searched'))

    @staticmethod
    def test_map(work_dir):
        found = sorted(glob.glob(osp.join(work_dir, '*', '*.json')))
        if not found:
            return None
        with open(found[-1]) as f:
            metrics = {k: v for x in f if x.strip()
                       for k, v in json.loads(x).items()}
        return metrics.get('coco/bbox_mAP_50')

    def map_check(self, num, extra=''):
        """mAP@0.5 of a probe's test beside the quickstart's own test of
        the searched subnet (a silent wrong result shows here)."""
        self.check(num, f'mAP@0.5 of this run: '
                   f'{self.test_map(self.dir(num, "wd"))}; of the '
                   'quickstart test with the searched arch: '
                   f'{self.reference_map()}{extra}')

    def probe_21(self):
        arch, space = BASELINE_300M, '300M'
        if self.searched_arch() == arch:  # all-3x3 is this run's own path
            arch = ['shuffle_5x5'] * 20
        path = write_arch_file(self.dir(21, 'other_arch.yaml'), arch, space)
        ckpt = osp.relpath(self.subnet_ckpt, self.qs)
        self.test(21, f'test.py on {ckpt} with a valid {space} arch file '
                  f'({arch[0]} x 20)', self.subnet_ckpt,
                  [f'model.backbone.arch={path}'])
        self.map_check(21)

    def probe_22(self):
        row = self.test(22, 'test.py on the same checkpoint with no arch '
                        '(config default)', self.subnet_ckpt)
        said = [x.split(' - ')[-1] for x in row['output'].splitlines()
                if 'records the architecture' in x]
        self.map_check(22, '; log: ' + (said[0][:200] if said else
                                        'no line on the architecture'))
        # 22b: the checkpoint as they were written on 2026-12-02, without
        # the architecture in its meta
        import torch
        state = torch.load(self.subnet_ckpt, map_location='cpu',
                           weights_only=False)
        for key in ('arch', 'search_space'):
            state.get('meta', {}).pop(key, None)
        old = self.dir('22b', 'no_meta.pth')
        os.makedirs(osp.dirname(old), exist_ok=True)
        torch.save(state, old)
        self.test('22b', 'the same checkpoint without arch in its meta '
                  '(as written before), no arch', old)

    def probe_23(self):
        self.export(23, 'export_subnet.py supernet 3,0,0,...',
                    ','.join(['3'] + ['0'] * 19))

    def probe_24(self):
        path = write_arch_file(self.dir(24, 'coco_fpn_1.3g.yaml'),
                               [CHOICES_300M[i] for i in FPN_13G], '1.3G')
        self.export(24, 'export_subnet.py with a 1.3G arch file', path)

    def probe_25(self):
        self.export(25, 'export_subnet.py with 0,0,0', '0,0,0')

    def probe_26(self):
        src = write_text(self.dir(26, 'notes.txt'), 'not a checkpoint\n')
        self.convert(26, 'detnas_to_mmdetnas.py on a text file', src)

    def probe_27(self):
        import torch
        src = self.dir(27, 'tensor.pth')
        os.makedirs(osp.dirname(src), exist_ok=True)
        torch.save(torch.zeros(3, 4), src)
        self.convert(27, 'detnas_to_mmdetnas.py on a torch file holding a '
                     'tensor', src)

    def probe_28(self):
        import torch
        src = self.dir(28, 'unrelated.pth')
        os.makedirs(osp.dirname(src), exist_ok=True)
        torch.save({'encoder.weight': torch.zeros(2, 2),
                    'decoder.bias': torch.zeros(2)}, src)
        self.convert(28, 'detnas_to_mmdetnas.py on a dict of unrelated keys',
                     src)

    def probe_29(self):
        self.test(29, 'test.py with a missing config', self.subnet_ckpt,
                  config=f'{QS}/no_such_config.py')

    def probe_30(self):
        self.test(30, 'test.py --cfg-options model.backbone.archh=...',
                  self.subnet_ckpt,
                  [f'model.backbone.archh={self.best_arch}'])

    # ========================================================== 31 - 34
    def probe_31_32(self):
        config = self.derived_config(31, """
structural_space = dict(components=dict(neck=dict(choices=dict(
    fpnn=dict(cfg=dict(model=dict(neck=dict(type='FPNN'))))))))
train_cfg = dict(
    population_size=2, max_generations=1, top_k=1, num_mutation=0,
    num_crossover=0,
    init=[
        dict(backbone='r18', neck='fpn64', head='two_stage',
             roi_head='conv4fc1', input_size='s320'),
        dict(backbone='r18', neck='fpnn', head='two_stage',
             roi_head='conv4fc1', input_size='s320'),
    ])
""")
        wd = self.dir(31, 'wd')
        self.structural(31, "structural search with a neck choice "
                        "type='FPNN' (in the first generation)", config, wd)
        self.structural(32, 'the same with --resume', config, wd,
                        ['--resume'])

    def probe_33(self):
        config = self.derived_config(33, """
train_cfg = dict(
    population_size=2, max_generations=1, top_k=1, num_mutation=0,
    num_crossover=0,
    init=[dict(backbone='r19', neck='fpn64', head='two_stage',
               roi_head='conv4fc1', input_size='s320')])
""")
        self.structural(33, "structural search with an init genome "
                        "backbone='r19'", config, self.dir(33, 'wd'))

    def probe_34(self):
        config = self.derived_config(34, """
structural_space = dict(components=dict(
    _delete_=True,
    backbone=dict(choices=dict(r18=dict(out_channels=[64, 128, 256, 512]))),
    neck=dict(choices=dict(
        fpn64=dict(),
        fpn32=dict(cfg=dict(model=dict(neck=dict(out_channels=32))))))))
train_cfg = dict(population_size=5, num_mutation=1,
                 num_crossover=1, init=[])
""")
        wd = self.dir(34, 'wd')
        row = self.structural(34, 'structural search, population 5 in a '
                              '2-structure space', config, wd)
        log = osp.join(wd, 'search.log')
        text = open(log).read() if osp.isfile(log) else row['output']
        said = [x.split(' - ')[-1] for x in text.splitlines()
                if 'search space' in x or 'stopping' in x
                or 'constraints' in x]
        n = len(read_jsonl(osp.join(wd, 'candidates.jsonl')))
        self.check(34, f'{n} candidates trained; lines: {said}')

    # ========================================================== 35 - 37
    def probe_35(self):
        wd = self.dir(35)
        self.run(35, 'split_search_set.py --num 100000', [
            'tools/dataset_converters/split_search_set.py', TRAIN_ANN,
            '--num', '100000', '--out-dir', wd
        ], wd)

    def probe_36(self):
        wd = self.dir(36)
        self.run(36, 'split_search_set.py on a missing annotation file', [
            'tools/dataset_converters/split_search_set.py',
            osp.join(wd, 'no_such_annotations.json'), '--out-dir', wd
        ], wd)

    def probe_37(self):
        self.search(37, "search: population 4 with the config's 3 + 3 "
                    'children', self.supernet_ckpt,
                    TINY_KEEP_CHILDREN + ['train_cfg.population_size=4'],
                    self.dir(37, 'wd'))

    # ========================================================== 38 - 40
    def probe_38_40(self):
        full = self.dir('38-40', 'uninterrupted')
        print('[38-40] the uninterrupted search to compare with', flush=True)
        ref = subprocess.run(
            [PY, 'tools/search.py', SEARCH, self.supernet_ckpt,
             '--work-dir', full, '--cfg-options', *EIGHT],
            cwd=ROOT, env=tool_env(), capture_output=True, text=True,
            timeout=TIMEOUT)
        expected = read_jsonl(osp.join(full, 'candidates.jsonl'))
        self.check('38-40', f'uninterrupted search: exit {ref.returncode}, '
                   f'{len(expected)} candidates')

        killed = self.dir(38, 'wd')
        self.probe_38(killed)
        state = self.read_state(killed)
        lines = read_jsonl(osp.join(killed, 'candidates.jsonl'))
        temp = [n for n in os.listdir(killed) if n.endswith('.tmp')]
        same = state is not None and state['records'] == lines
        first = without_timing(expected[:len(lines)])
        self.check(38, f'{len(lines)} lines in candidates.jsonl, '
                   f'{len(state["records"]) if state else "no"} records in '
                   f'search_state.pkl: {"agree" if same else "DIFFER"}; '
                   f'temporary files: {temp or "none"}; the {len(lines)} '
                   'equal the first ones of the uninterrupted run: '
                   f'{without_timing(lines) == first}')
        restart = self.dir(40, 'wd')
        shutil.copytree(killed, restart)

        self.search(39, 'the same with --resume', self.supernet_ckpt, EIGHT,
                    killed, ['--resume'])
        resumed = read_jsonl(osp.join(killed, 'candidates.jsonl'))
        self.check(39, f'{len(resumed)} candidates after --resume; equal to '
                   'the uninterrupted run (timing fields ignored): '
                   f'{without_timing(resumed) == without_timing(expected)}; '
                   'best_arch.yaml equal: '
                   f'{same_file(killed, full, "best_arch.yaml")}')

        row = self.search(40, 'the same without --resume',
                          self.supernet_ckpt, EIGHT, restart)
        earlier = sorted(glob.glob(osp.join(restart, 'earlier_search_*')))
        kept = read_jsonl(osp.join(earlier[0], 'candidates.jsonl')) \
            if earlier else []
        warned = [x.split(' - ')[-1] for x in row['output'].splitlines()
                  if 'earlier search' in x]
        fresh = read_jsonl(osp.join(restart, 'candidates.jsonl'))
        self.check(40, f'earlier_search_* folders: '
                   f'{[osp.basename(e) for e in earlier]}; they keep '
                   f'{len(kept)} candidates, equal to the killed run\'s '
                   f'{len(lines)}: {kept == lines}; the new search scored '
                   f'{len(fresh)}, equal to the uninterrupted run: '
                   f'{without_timing(fresh) == without_timing(expected)}; '
                   f'warning: {warned[0][:300] if warned else "none"}')

    def probe_38(self, wd):
        """Start the search, SIGKILL it once KILL_AFTER candidates are in
        candidates.jsonl."""
        label = (f'kill -9 during a search after {KILL_AFTER} candidates '
                 '(of 8)')
        cmd = [PY, 'tools/search.py', SEARCH, self.supernet_ckpt,
               '--work-dir', wd, '--cfg-options', *EIGHT]
        log = osp.join(self.out, 'logs', '38.log')
        print(f'[38] {label}\n  $ {" ".join(cmd)}', flush=True)
        before = snapshot(wd)
        jsonl = osp.join(wd, 'candidates.jsonl')
        t0 = time.time()
        with open(log + '.out', 'w') as out_f, open(log + '.err', 'w') as \
                err_f:
            proc = subprocess.Popen(cmd, cwd=ROOT, env=tool_env(),
                                    stdout=out_f, stderr=err_f, text=True,
                                    start_new_session=True)
            code = None
            while time.time() - t0 < TIMEOUT:
                if len(read_jsonl(jsonl)) >= KILL_AFTER:
                    os.kill(proc.pid, signal.SIGKILL)
                    proc.wait()
                    code = f'{proc.returncode} (SIGKILL)'
                    break
                if proc.poll() is not None:
                    code = f'{proc.returncode} (ended before the kill)'
                    break
                time.sleep(0.2)
            else:
                kill_group(proc)
                proc.wait()
                code = 'timeout'
        with open(log + '.out') as f:
            out = f.read()
        with open(log + '.err') as f:
            err = f.read()
        os.remove(log + '.out')
        os.remove(log + '.err')
        self._row(38, label, cmd, wd, before, code, out, err,
                  time.time() - t0, log)

    @staticmethod
    def read_state(work_dir):
        path = osp.join(work_dir, 'search_state.pkl')
        if not osp.isfile(path):
            return None
        with open(path, 'rb') as f:
            return pickle.load(f)

    # ------------------------------------------------------------- all
    ORDER = [
        ('1', 'probe_1'), ('2', 'probe_2'), ('3', 'probe_3'),
        ('4', 'probe_4'), ('5', 'probe_5'), ('6', 'probe_6'),
        ('7', 'probe_7'), ('8', 'probe_8'), ('9', 'probe_9'),
        ('10', 'probe_10'), ('11', 'probe_11'), ('12-17', 'probe_12_17'),
        ('18-20', 'probe_18_20'), ('21', 'probe_21'), ('22', 'probe_22'),
        ('23', 'probe_23'), ('24', 'probe_24'), ('25', 'probe_25'),
        ('26', 'probe_26'), ('27', 'probe_27'), ('28', 'probe_28'),
        ('29', 'probe_29'), ('30', 'probe_30'), ('31-32', 'probe_31_32'),
        ('33', 'probe_33'), ('34', 'probe_34'), ('35', 'probe_35'),
        ('36', 'probe_36'), ('37', 'probe_37'), ('38-40', 'probe_38_40'),
    ]

    def folders_of(self, group):
        """The OUT folders a group of probes writes."""
        names = {f'p{group}'}
        if '-' in group:
            lo, hi = map(int, group.split('-'))
            names |= {f'p{i}' for i in range(lo, hi + 1)}
        names |= {'p22b'} if group == '22' else set()
        names |= {'p16-17'} if group == '12-17' else set()
        names |= {'p19-20'} if group == '18-20' else set()
        return [osp.join(self.out, n) for n in names]

    def run_all(self, only=None):
        for group, method in self.ORDER:
            if only and not wanted(group, only):
                continue
            for folder in self.folders_of(group):
                if osp.isdir(folder):
                    for base, dirs, _ in os.walk(folder):
                        for d in dirs:  # a read-only dir of an earlier run
                            os.chmod(osp.join(base, d), 0o755)
                    shutil.rmtree(folder)
            getattr(self, method)()

    # ------------------------------------------------------------ report
    def table(self, seconds):
        lines = [
            f'# Bad-input probes on {self.qs}', '',
            f'{len(self.rows)} commands, {seconds / 60:.1f} min in all '
            f'(benchmarks/bad_input_probes.py). Logs: {self.out}/logs/.', '',
            '| # | input | exit | last line | traceback | left behind |',
            '|---|---|---|---|---|---|'
        ]
        for r in self.rows:
            lines.append(
                f'| {r["num"]} | {cell(r["label"])} | {r["exit"]} | '
                f'{cell(r["last"])} | {"yes" if r["traceback"] else "no"} | '
                f'{cell(r["left"], 250)} |')
        lines += ['', '## Checks', '']
        lines += [f'- {num}: {text}' for num, text in self.checks]
        return '\n'.join(lines) + '\n'


def same_file(a, b, name):
    pa, pb = osp.join(a, name), osp.join(b, name)
    if not (osp.isfile(pa) and osp.isfile(pb)):
        return False
    with open(pa) as fa, open(pb) as fb:
        return fa.read() == fb.read()


def wanted(group, only):
    """Whether a probe group (e.g. '12-17') holds one of ``only``."""
    if '-' in group:
        lo, hi = map(int, group.split('-'))
        nums = set(range(lo, hi + 1))
    else:
        nums = {int(group)}
    return bool(nums & only)


def parse_only(items):
    nums = set()
    for item in items or []:
        if '-' in item:
            lo, hi = map(int, item.split('-'))
            nums |= set(range(lo, hi + 1))
        else:
            nums.add(int(item))
    return nums


def main(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__.split('\n')[0],
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--quickstart-dir', required=True,
                        help='work dir of tools/quickstart.py (tiny or full)')
    parser.add_argument('--out-dir', required=True,
                        help='scratch folder for the probes\' inputs, work '
                        'dirs, logs and probes.md')
    parser.add_argument('--only', nargs='+',
                        help='probe numbers or ranges, e.g. 12-17 21')
    args = parser.parse_args(argv)
    probes = Probes(args.quickstart_dir, args.out_dir)
    t0 = time.time()
    probes.run_all(parse_only(args.only))
    report = probes.table(time.time() - t0)
    with open(osp.join(probes.out, 'probes.md'), 'w') as f:
        f.write(report)
    print('\n' + report)


if __name__ == '__main__':
    main()
