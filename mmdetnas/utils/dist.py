"""Distributed helpers built on ``mmengine.dist``."""
from typing import Any

from mmengine.dist import broadcast_object_list, get_world_size


def broadcast_object(obj: Any, src: int = 0) -> Any:
    """Return rank ``src``'s ``obj`` on every rank (no-op when not
    distributed). ``obj`` must be picklable."""
    if get_world_size() == 1:
        return obj
    box = [obj]
    broadcast_object_list(box, src=src)
    return box[0]
