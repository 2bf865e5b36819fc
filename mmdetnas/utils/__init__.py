from .atomic import atomic_write
from .checkpoint import (check_checkpoint_matches, file_sha256,
                         load_local_checkpoint, register_checkpoint_loader)
from .dist import broadcast_object
from .runner_release import release_runner

__all__ = [
    'atomic_write', 'broadcast_object', 'check_checkpoint_matches',
    'file_sha256', 'load_local_checkpoint', 'register_checkpoint_loader',
    'release_runner'
]
