"""The quickstart's multi-seed summary (``tools/quickstart.py --seeds``,
:mod:`mmdetnas.apis.quickstart`)."""
import argparse

from mmdetnas.apis import quickstart as quickstart_tool

A3 = ('shuffle_3x3', ) * 20
A5 = ('shuffle_5x5', ) + ('shuffle_3x3', ) * 19


def _rows(searched, baseline):
    return {
        'searched': dict(name='searched', arch=A5, flops=264.5e6,
                         test_map50=searched),
        'baseline': dict(name='baseline', arch=A3, flops=262.7e6,
                         test_map50=baseline),
    }


def _options(work_dir, seeds):
    """The options of ``tools/quickstart.py --seeds ... --work-dir WORK_DIR
    --skip-data``."""
    return argparse.Namespace(tiny=False, retinanet=False,
                              work_dir=str(work_dir), skip_data=True, jobs=1,
                              seed=0, seeds=seeds)


def test_seeds_summary_mean_sd_and_wins(tmp_path):
    qs = quickstart_tool
    per_seed = {0: _rows(0.30, 0.20), 1: _rows(0.10, 0.20),
                2: _rows(0.20, 0.20)}
    qs.write_seeds_summary(str(tmp_path), per_seed,
                           argparse.Namespace(tiny=False))
    text = (tmp_path / 'seeds_summary.md').read_text()
    lines = text.splitlines()
    # per seed: the difference searched - baseline
    assert '| 0 | `10000000000000000000` | 264.5 | 0.3000 | 0.2000 | ' \
        '+0.1000 |' in lines
    assert any(x.startswith('| 1 |') and x.endswith('-0.1000 |')
               for x in lines)
    # mean and sample sd by hand: searched 0.2 ± 0.1, baseline 0.2 ± 0,
    # differences (0.1, -0.1, 0) -> 0 ± 0.1
    assert '| mean ± sd | | | 0.2000 ± 0.1000 | 0.2000 ± 0.0000 | ' \
        '0.0000 ± 0.1000 |' in lines
    # ties count as "searched >= baseline"
    assert 'Searched >= baseline in 2 of 3 seeds' in text
    # paired t-test: mean difference 0 -> t = 0, p = 1
    assert 't = 0.00, two-sided p = 1.00' in text


def test_seeds_summary_paired_t_test_by_hand(tmp_path):
    import math

    from scipy import stats
    qs = quickstart_tool
    # the README's 3-seed study: differences -0.0109, -0.0344, -0.0055
    base = [0.0438, 0.0658, 0.0308]
    diffs = [-0.0109, -0.0344, -0.0055]
    per_seed = {i: _rows(b + d, b) for i, (b, d) in
                enumerate(zip(base, diffs))}
    qs.write_seeds_summary(str(tmp_path), per_seed,
                           argparse.Namespace(tiny=False))
    text = (tmp_path / 'seeds_summary.md').read_text()
    n = 3
    mean = sum(diffs) / n
    sd = math.sqrt(sum((d - mean) ** 2 for d in diffs) / (n - 1))
    t = mean / (sd / math.sqrt(n))
    p = 2 * stats.t.sf(abs(t), n - 1)  # Student t with n - 1 dof
    assert f't = {t:.2f}, two-sided p = {p:.2f}' in text
    # by hand: mean -0.016933, sd 0.015366, t = -0.016933 / (0.015366 /
    # sqrt 3) = -1.909
    assert round(t, 2) == -1.91 and round(p, 2) == 0.20
    # one seed, or equal differences: no test line
    qs.write_seeds_summary(str(tmp_path), {0: _rows(0.3, 0.2)},
                           argparse.Namespace(tiny=False))
    assert 'Paired t-test' not in (tmp_path / 'seeds_summary.md').read_text()
    assert all(math.isnan(v) for v in qs.paired_t_test([0.1, 0.1]))


def test_missing_test_metric_counts_as_zero(tmp_path):
    qs = quickstart_tool
    qs.write_seeds_summary(str(tmp_path), {0: _rows(None, 0.05)},
                           argparse.Namespace(tiny=True))
    text = (tmp_path / 'seeds_summary.md').read_text()
    assert '| 0 | `10000000000000000000` | 264.5 | - | 0.0500 | -0.0500 |' \
        in text
    assert 'Searched >= baseline in 0 of 1 seeds' in text


def test_seeds_study_collects_finished_runs(tmp_path, monkeypatch):
    """Seeds whose work dir holds a finished run are collected, not run
    again (a killed study resumes; seeds run in parallel are gathered)."""
    import json
    qs = quickstart_tool
    ran = []
    monkeypatch.setattr(qs, 'run_pipeline',
                        lambda a: ran.append(a.seed) or list(
                            _rows(0.4, 0.1).values()))
    for seed, (a, b) in ((0, (0.30, 0.20)), (2, (0.10, 0.20))):
        d = tmp_path / f'seed_{seed}'
        d.mkdir()
        rows = [dict(r, arch=list(r['arch']))
                for r in _rows(a, b).values()]
        (d / 'summary.json').write_text(
            json.dumps(dict(seed=seed, tiny=False, rows=rows, times={})))
    qs.run_quickstart(_options(tmp_path, [0, 1, 2]))
    assert ran == [1]  # only the unfinished seed ran
    text = (tmp_path / 'seeds_summary.md').read_text()
    assert '| 2 | `10000000000000000000` | 264.5 | 0.1000 | 0.2000 | ' \
        '-0.1000 |' in text
    # searched 0.3, 0.4, 0.1 -> mean 0.2667
    assert '0.2667 ± ' in text
    assert 'Searched >= baseline in 2 of 3 seeds' in text


def test_a_cut_or_foreign_summary_runs_the_seed_again(tmp_path, monkeypatch,
                                                      capsys):
    """A ``summary.json`` cut by a kill, or not a quickstart summary, is
    not a finished seed: that seed runs again, with a message naming the
    file, instead of the study dying on a JSON error."""
    qs = quickstart_tool
    ran = []
    monkeypatch.setattr(qs, 'run_pipeline',
                        lambda a: ran.append(a.seed) or list(
                            _rows(0.4, 0.1).values()))
    (tmp_path / 'seed_0').mkdir()
    cut = tmp_path / 'seed_0' / 'summary.json'
    cut.write_text('{"seed": 0, "tiny": false, "ro')
    (tmp_path / 'seed_1').mkdir()
    (tmp_path / 'seed_1' / 'summary.json').write_text('{"seed": 1}')
    qs.run_quickstart(_options(tmp_path, [0, 1]))
    assert ran == [0, 1]
    out = capsys.readouterr().out
    assert f'{cut}: not a finished quickstart summary' in out
    assert 'running this seed again' in out
