"""Files that a kill at any moment leaves whole: the old or the new
content, never a cut one."""
import contextlib
import os
import os.path as osp
from typing import IO, Iterator


@contextlib.contextmanager
def atomic_write(path: str, mode: str = 'w',
                 encoding: str = 'utf-8') -> Iterator[IO]:
    """Write ``path`` through a temporary file in the same folder that is
    fsynced and renamed over ``path`` when the block ends without error.

    Args:
        path (str): The file to (re)write; its folder is created.
        mode (str): ``'w'`` (text, ``encoding``) or ``'wb'``.
        encoding (str): Text encoding.

    Yields:
        file: the open temporary file.

    Raises:
        ValueError: ``mode`` other than ``'w'`` or ``'wb'``.
        OSError: the file cannot be written. An exception inside the block
            removes the temporary file and leaves ``path`` untouched.
    """
    if mode not in ('w', 'wb'):
        raise ValueError(f"atomic_write mode must be 'w' or 'wb', got "
                         f'{mode!r}')
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    # one fixed name: a temporary file left by a kill is overwritten by the
    # next write (one process writes a given path)
    tmp = path + '.tmp'
    kw = {} if mode == 'wb' else dict(encoding=encoding)
    try:
        with open(tmp, mode, **kw) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if osp.exists(tmp):
            os.remove(tmp)
