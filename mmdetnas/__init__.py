"""mmdetnas: DetNAS backbone search for the OpenMMLab 2.x stack."""
from .utils.checkpoint import register_checkpoint_loader
from .version import __version__

register_checkpoint_loader()

__all__ = ['__version__']
