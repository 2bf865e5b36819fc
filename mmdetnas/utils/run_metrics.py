"""Reading the metrics and the last checkpoint a finished mmengine run wrote
into its work dir.

mmengine's Runner logs into a dated folder per run
(``<work_dir>/<YYYYmmdd_HHMMSS>/``): a training's scalars, validation
included, go to ``vis_data/scalars.json`` (one JSON object per line), and
``tools/test.py`` writes the test metrics to ``<YYYYmmdd_HHMMSS>.json``.
mmengine's CheckpointHook names the newest checkpoint in
``<work_dir>/last_checkpoint``. The quickstart and the ranking-correlation
study read results back from there with these functions; a line cut by a
killed run is skipped.
"""
import glob
import json
import os.path as osp
from typing import List, Tuple

__all__ = ['TRAIN_SCALARS', 'TEST_METRICS', 'metric_files',
           'metric_records', 'latest_metrics', 'last_checkpoint']

#: a training's scalars (``tools/train.py``), relative to the work dir
TRAIN_SCALARS = osp.join('*', 'vis_data', 'scalars.json')
#: the metrics of ``tools/test.py``, relative to the work dir
TEST_METRICS = osp.join('*', '*.json')


def metric_files(work_dir: str, pattern: str = TRAIN_SCALARS) -> List[str]:
    """The metric files of every run in ``work_dir``, oldest first (the
    dated folder names sort by time)."""
    return sorted(glob.glob(osp.join(work_dir, pattern)))


def metric_records(work_dir: str, pattern: str = TRAIN_SCALARS,
                   newest_only: bool = False) -> List[Tuple[str, dict]]:
    """``(file, record)`` of every JSON object logged in the metric files
    (oldest run first, in logging order); lines that are not a JSON object
    (e.g. cut by a kill) are skipped.

    Args:
        work_dir (str): The run's work dir.
        pattern (str): :data:`TRAIN_SCALARS` or :data:`TEST_METRICS`.
        newest_only (bool): Read only the newest run's file.
    """
    files = metric_files(work_dir, pattern)
    if newest_only:
        files = files[-1:]
    records = []
    for path in files:
        with open(path, encoding='utf-8') as f:
            for line in f:
                try:
                    rec = json.loads(line)
                except ValueError:
                    continue
                if isinstance(rec, dict):
                    records.append((path, rec))
    return records


def latest_metrics(work_dir: str, pattern: str = TRAIN_SCALARS) -> dict:
    """The last value of every metric the newest run in ``work_dir``
    logged (e.g. ``{'coco/bbox_mAP': 0.41, 'accuracy/top1': 71.2,
    ...}``).

    Raises:
        FileNotFoundError: no metric file in ``work_dir``.
    """
    records = metric_records(work_dir, pattern, newest_only=True)
    if not metric_files(work_dir, pattern):
        raise FileNotFoundError(f'no metrics json in {work_dir}')
    return {k: v for _, rec in records for k, v in rec.items()}


def last_checkpoint(work_dir: str) -> str:
    """The newest checkpoint of the run in ``work_dir``: the path its
    ``last_checkpoint`` file names. A path that does not exist (a work dir
    moved from another machine) is looked up in ``work_dir`` by its file
    name; if it is not there either, the named path is returned as it is.

    Raises:
        FileNotFoundError: ``work_dir`` holds no ``last_checkpoint`` (no
            checkpoint was written).
    """
    marker = osp.join(work_dir, 'last_checkpoint')
    if not osp.isfile(marker):
        raise FileNotFoundError(f'no checkpoint written in {work_dir}')
    with open(marker, encoding='utf-8') as f:
        path = f.read().strip()
    moved = osp.join(work_dir, osp.basename(path))
    if not osp.isfile(path) and osp.isfile(moved):
        return moved
    return path
