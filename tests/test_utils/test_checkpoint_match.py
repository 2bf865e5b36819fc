"""A search refuses a supernet checkpoint that does not fit its model
(mmengine's Runner loads ``load_from`` non-strictly and would score random
weights)."""
import pytest
import torch
import torch.nn as nn

from mmdetnas.models import DetNASShuffleNetV2
from mmdetnas.utils import check_checkpoint_matches


class Net(nn.Module):

    def __init__(self, width=4):
        super().__init__()
        self.backbone = nn.Sequential(nn.Conv2d(3, width, 3),
                                      nn.BatchNorm2d(width))
        self.head = nn.Linear(width, 2)


def _save(path, sd, wrap=True):
    torch.save({'state_dict': sd} if wrap else sd, path)
    return str(path)


def test_matching_checkpoints_pass(tmp_path):
    net = Net()
    sd = net.state_dict()
    check_checkpoint_matches(net, _save(tmp_path / 'a.pth', sd))
    # a bare state dict, 'module.' prefixes (DDP), a shuffle-order record
    check_checkpoint_matches(net, _save(tmp_path / 'b.pth', sd, wrap=False))
    check_checkpoint_matches(
        net, _save(tmp_path / 'c.pth', {'module.' + k: v
                                        for k, v in sd.items()}))
    rec = dict(sd, **{'backbone.shuffle_order': torch.tensor(0)})
    check_checkpoint_matches(net, _save(tmp_path / 'd.pth', rec))


def test_missing_unexpected_and_shape_are_named(tmp_path):
    net = Net()
    sd = net.state_dict()
    no_head = {k: v for k, v in sd.items() if not k.startswith('head.')}
    with pytest.raises(ValueError) as e:
        check_checkpoint_matches(net, _save(tmp_path / 'a.pth', no_head))
    msg = str(e.value)
    assert '2 weight(s) of the model are missing' in msg
    assert "['head']" in msg and 'head.weight' in msg and 'a.pth' in msg
    extra = dict(sd, **{'neck.fc.weight': torch.zeros(1)})
    with pytest.raises(ValueError, match=r"1 key\(s\) of the checkpoint are "
                       r"not in the model \(modules \['neck'\]"):
        check_checkpoint_matches(net, _save(tmp_path / 'b.pth', extra))
    wide = Net(width=8).state_dict()
    with pytest.raises(ValueError) as e:
        check_checkpoint_matches(net, _save(tmp_path / 'c.pth', wide))
    # conv weight, conv bias, 4 BN tensors (the counter is a scalar) and the
    # head weight change shape
    assert '7 tensor(s) have another shape' in str(e.value)
    assert 'backbone.0.weight (8, 3, 3, 3) vs (4, 3, 3, 3)' in str(e.value)
    with pytest.raises(ValueError, match='holds no state dict'):
        torch.save([1, 2], tmp_path / 'd.pth')
        check_checkpoint_matches(net, str(tmp_path / 'd.pth'))


def test_other_weight_sharing_or_space_is_refused(tmp_path):
    model = DetNASShuffleNetV2('300M-kernel', weight_sharing='kernel')
    independent = DetNASShuffleNetV2('300M-kernel', weight_sharing='none')
    path = _save(tmp_path / 'sup.pth', independent.state_dict())
    with pytest.raises(ValueError, match='shuffle_3x3') as e:
        check_checkpoint_matches(model, path)
    # 20 layers x (3x3 and 5x5 blocks) are not in the entangled model
    assert 'not in the model' in str(e.value)
    other_space = DetNASShuffleNetV2('300M', weight_sharing='kernel')
    with pytest.raises(ValueError, match='shuffle_xception'):
        check_checkpoint_matches(
            model, _save(tmp_path / 'x.pth', other_space.state_dict()))


def test_search_tool_refuses_before_searching(tmp_path):
    """``tools/search.py`` run as a user runs it: one error line, exit
    status 1, no candidate scored."""
    from mmengine.config import Config

    from mmdetnas.registry import MODELS
    from mmdetnas.utils.setup_env import register_all_modules
    from tests.e2e_utils import run_tool
    register_all_modules()
    cfg_path = ('configs/quickstart/'
                'detnas_search_shufflenetv2-300m_quick_fashion-mnist.py')
    cfg = Config.fromfile(cfg_path)
    cfg.model.backbone.weight_sharing = 'none'
    cfg.model.backbone.init_cfg = None
    wrong = MODELS.build(cfg.model)
    ckpt = _save(tmp_path / 'independent.pth', wrong.state_dict())
    proc = run_tool(['tools/search.py', cfg_path, ckpt, '--work-dir',
                     str(tmp_path / 'wd')], check=False)
    assert proc.returncode == 1, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert 'does not fit the model' in proc.stderr
    assert not (tmp_path / 'wd' / 'candidates.jsonl').exists()
