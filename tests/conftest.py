"""Shared pytest configuration of the mmdetnas test suite."""
import pytest
import torch
from mmengine.registry import DefaultScope


def pytest_configure(config):
    # the test machines are small and shared: several intra-op threads
    # competing with other processes make small CPU convs orders of
    # magnitude slower (spinning OpenMP workers); tests use tiny inputs
    torch.set_num_threads(1)
    config.addinivalue_line(
        'markers', 'slow: a test that takes more than ~5 s (multi-process, '
        'big search spaces); deselect with -m "not slow"')


@pytest.fixture(scope='session', autouse=True)
def mmdet_default_scope():
    """Configs say ``type='mmdetnas.X'`` and run under mmdet's scope, as in
    the project's configs (``default_scope='mmdet'``): make sure a default
    scope exists for the whole session."""
    if DefaultScope.get_current_instance() is None:
        DefaultScope.get_instance('mmdetnas-tests', scope_name='mmdet')
    yield
