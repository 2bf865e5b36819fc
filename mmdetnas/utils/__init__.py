from .checkpoint import load_local_checkpoint, register_checkpoint_loader
from .dist import broadcast_object

__all__ = [
    'broadcast_object', 'load_local_checkpoint', 'register_checkpoint_loader'
]
