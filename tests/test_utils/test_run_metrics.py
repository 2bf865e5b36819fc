"""Reading a finished run's metrics back from its work dir, as mmengine
writes them (dated run folders, one JSON object per line)."""
import json

import pytest

from mmdetnas.utils.run_metrics import (TEST_METRICS, TRAIN_SCALARS,
                                        last_checkpoint, latest_metrics,
                                        metric_records)


def _write(path, lines):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(''.join(lines))


def test_the_newest_run_and_the_last_value_of_each_metric(tmp_path):
    old = tmp_path / '20260101_000000' / 'vis_data' / 'scalars.json'
    new = tmp_path / '20260102_000000' / 'vis_data' / 'scalars.json'
    _write(old, [json.dumps({'loss': 9.0, 'step': 1}) + '\n'])
    _write(new, [
        json.dumps({'loss': 2.0, 'step': 1}) + '\n',
        json.dumps({'coco/bbox_mAP': 0.25, 'step': 2}) + '\n',
        json.dumps({'loss': 1.5, 'step': 3}) + '\n',
        '{"loss": 1.2, "st',  # cut by a kill
    ])
    assert latest_metrics(str(tmp_path)) == {
        'loss': 1.5, 'coco/bbox_mAP': 0.25, 'step': 3}
    recs = metric_records(str(tmp_path))
    assert [(p.split('/')[-3], r['step']) for p, r in recs] == [
        ('20260101_000000', 1), ('20260102_000000', 1),
        ('20260102_000000', 2), ('20260102_000000', 3)]
    # test metrics: <stamp>/<stamp>.json
    _write(tmp_path / 't' / '20260103_000000' / '20260103_000000.json',
           [json.dumps({'coco/bbox_mAP_50': 0.5}) + '\n'])
    assert latest_metrics(str(tmp_path / 't'), TEST_METRICS) == {
        'coco/bbox_mAP_50': 0.5}
    with pytest.raises(FileNotFoundError, match='no metrics json'):
        latest_metrics(str(tmp_path / 'empty'), TRAIN_SCALARS)


def test_last_checkpoint_also_of_a_moved_work_dir(tmp_path):
    with pytest.raises(FileNotFoundError, match='no checkpoint written'):
        last_checkpoint(str(tmp_path))
    ckpt = tmp_path / 'iter_4.pth'
    ckpt.write_bytes(b'')
    (tmp_path / 'last_checkpoint').write_text(f'{ckpt}\n')
    assert last_checkpoint(str(tmp_path)) == str(ckpt)
    # written on another machine: found by its name in the work dir
    (tmp_path / 'last_checkpoint').write_text('/elsewhere/wd/iter_4.pth')
    assert last_checkpoint(str(tmp_path)) == str(ckpt)
    # nowhere: the named path as it is
    (tmp_path / 'last_checkpoint').write_text('/elsewhere/wd/iter_8.pth')
    assert last_checkpoint(str(tmp_path)) == '/elsewhere/wd/iter_8.pth'
