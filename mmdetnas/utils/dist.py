"""Distributed helpers built on ``mmengine.dist``."""
from typing import Any, List

from mmengine.dist import (all_gather_object, broadcast_object_list,
                           get_world_size)


def broadcast_object(obj: Any, src: int = 0) -> Any:
    """Return rank ``src``'s ``obj`` on every rank (no-op when not
    distributed).

    Args:
        obj (Any): a picklable object (ignored on the other ranks).
        src (int): the rank whose object is returned.

    Returns:
        Any: rank ``src``'s ``obj``.
    """
    if get_world_size() == 1:
        return obj
    box = [obj]
    broadcast_object_list(box, src=src)
    return box[0]


def gather_objects(obj: Any) -> List[Any]:
    """Every rank's ``obj``, in rank order, on every rank (``[obj]`` when
    not distributed).

    Args:
        obj (Any): a picklable object of this rank.

    Returns:
        list: the objects of ranks ``0 .. world_size - 1``.
    """
    if get_world_size() == 1:
        return [obj]
    return list(all_gather_object(obj))
