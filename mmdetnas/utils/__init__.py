from .checkpoint import (check_checkpoint_matches, load_local_checkpoint,
                         register_checkpoint_loader)
from .dist import broadcast_object

__all__ = [
    'broadcast_object', 'check_checkpoint_matches', 'load_local_checkpoint',
    'register_checkpoint_loader'
]
