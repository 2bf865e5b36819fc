"""Tests of the benchmark suite (benchmarks/).

The smoke run executes every benchmark script with tiny inputs in
subprocesses (about a minute on a 2-core CPU); the helpers of
``benchmarks/common.py`` are tested directly.
"""
import os
import os.path as osp
import re
import subprocess
import sys

import pytest

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
BENCH = osp.join(ROOT, 'benchmarks')
NAMES = ('supernet_overhead', 'candidate_eval', 'constraint_cost',
         'search_throughput', 'what_search_buys', 'ranking')
FLOAT = r'-?\d+(\.\d+)?(e[-+]?\d+)?'


@pytest.fixture(scope='module')
def common():
    sys.path.insert(0, BENCH)
    try:
        import common as module
        yield module
    finally:
        sys.path.remove(BENCH)


def test_alternate_order_and_warmup(common):
    calls = []
    fns = {n: (lambda n=n: calls.append(n)) for n in 'ab'}
    t = common.alternate(fns, warmup=1, repeats=3)
    # warm-up round (-1: reversed), then a b / b a / a b
    assert calls == ['b', 'a', 'a', 'b', 'b', 'a', 'a', 'b']
    assert {k: len(v) for k, v in t.items()} == {'a': 3, 'b': 3}
    assert all(x >= 0 for v in t.values() for x in v)


def test_alternate_timer_and_hooks(common):
    seen = []
    t = common.alternate(
        {'a': None, 'b': None}, warmup=0, repeats=2,
        before=lambda n, r: seen.append(('before', n, r)),
        timer=lambda n, fn: 2.0 if n == 'a' else 1.0)
    assert t == {'a': [2.0, 2.0], 'b': [1.0, 1.0]}
    assert seen[0] == ('before', 'a', 0) and len(seen) == 4


def test_summary_ratio_table(common):
    s = common.summarize([1, 2, 3, 4, 100])
    assert s['median'] == 3 and s['min'] == 1 and s['max'] == 100
    assert s['q1'] == 2 and s['q3'] == 4 and s['n'] == 5
    r = common.paired_ratio([2, 4, 6], [1, 2, 2])
    assert r['ratio'] == pytest.approx(2.0)
    assert r['min'] == pytest.approx(2.0) and r['max'] == pytest.approx(3)
    assert 'per-round' in common.fmt_ratio(r)
    md = common.markdown_table(['a', 'b'], [[1, 2]])
    assert md.splitlines() == ['| a | b |', '|---|---|', '| 1 | 2 |']
    line = common.verdict_line(dict(target='x <= 1', value=1.5, met=False,
                                    why='slow'))
    assert 'NOT MET' in line and '1.5' in line and 'slow' in line


@pytest.mark.slow
def test_run_all_smoke(tmp_path):
    results = osp.join(BENCH, 'RESULTS.md')
    before = open(results).read() if osp.isfile(results) else None
    env = dict(os.environ, PYTHONUNBUFFERED='1')
    # two groups side by side (each benchmark process uses one thread;
    # constraint_cost reads candidate_eval's candidate time, so they stay
    # together), balanced by their smoke times measured alone with one
    # thread: 23 + 17 + 12 + 30 s against 15 + 73 s
    groups = [NAMES[:4], NAMES[4:]]
    procs = []
    for k, group in enumerate(groups):
        out = tmp_path / f'smoke{k}.md'
        procs.append((group, out, subprocess.Popen(
            [sys.executable, osp.join(BENCH, 'run_all.py'), '--smoke',
             '--out', str(out), '--only', *group], cwd=ROOT,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            env=env)))
    for group, out, proc in procs:
        log, _ = proc.communicate(timeout=900)
        assert proc.returncode == 0, log[-5000:]
        # one summary line per benchmark with at least one numeric ratio
        summary = log.split('=== summary', 1)[1]
        for name in group:
            line = next((x for x in summary.splitlines()
                         if x.startswith(name + ':')), None)
            assert line is not None, f'{name} missing from summary:\n' \
                f'{summary}'
            assert re.search(r': ' + FLOAT + r'[;| ]', line), line
            assert 'script failed' not in line
        # every benchmark printed a table with a ratio column or row
        report = out.read_text()
        sections = report.split('\n## ')[2:]  # after the title and summary
        assert len(sections) == len(group), report[:2000]
        for sec in sections:
            assert '|---' in sec and 'ratio' in sec.lower(), sec[:1000]
            assert 'SMOKE MODE' in sec
    # smoke mode leaves RESULTS.md alone
    after = open(results).read() if osp.isfile(results) else None
    assert before == after


def test_run_all_reuses_a_finished_result(tmp_path):
    """--reuse NAME=JSON puts an earlier run's result into the report
    without running the script, and says so; a bad NAME is refused."""
    import json
    fake = dict(title='Ranking, reused', verdicts=[], seconds=3600.0,
                headlines=[dict(label='supernet Kendall tau', ratio=0.25)],
                markdown='## Ranking, reused\n\n| a |\n|---|\n| 1 |')
    path = tmp_path / 'ranking.json'
    path.write_text(json.dumps(fake))
    out = tmp_path / 'report.md'
    proc = subprocess.run(
        [sys.executable, osp.join(BENCH, 'run_all.py'), '--only', 'ranking',
         '--reuse', f'ranking={path}', '--out', str(out)], cwd=ROOT,
        capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    report = out.read_text()
    assert '## Ranking, reused' in report
    assert f'taken from an earlier run of `bench_ranking.py` ({path})' \
        in report
    assert 'supernet Kendall tau: 0.25' in report
    bad = subprocess.run(
        [sys.executable, osp.join(BENCH, 'run_all.py'), '--reuse',
         f'nosuch={path}'], cwd=ROOT, capture_output=True, text=True,
        timeout=300)
    assert bad.returncode == 2 and 'nosuch' in bad.stderr
