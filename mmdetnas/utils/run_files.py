"""Leave nothing in the work dir when a tool refuses its inputs.

mmengine's ``Runner`` creates the work dir, a timestamped log folder
(``<work_dir>/<YYYYmmdd_HHMMSS>/``, with the log file and ``vis_data``) and a
copy of the config (``<work_dir>/<config name>.py``) as soon as it is built,
before the tool can check what it was given (a checkpoint of another model,
impossible search settings, a misspelt ``score_key``...). A refused run then
left a dated folder and a config copy behind for every try.

:class:`RunFiles` notes what the work dir holds before the Runner is built
and, when the run is refused, removes exactly what that Runner created: its
own log folder, its config copy (a copy that was there before gets its old
content back) and the work dir and parent folders it created, when they are
empty. Nothing that existed before is removed.

Used by the tools as::

    files = RunFiles(cfg)
    with files.on_refusal(started=lambda: ...):
        runner = files.track(build_runner(cfg))
        ...
"""
import os
import os.path as osp
import re
import shutil
from contextlib import contextmanager
from typing import Callable, List, Optional

__all__ = ['RunFiles', 'file_signature']

#: mmengine's Runner timestamp (``time.strftime('%Y%m%d_%H%M%S')``)
_TIMESTAMP = re.compile(r'^\d{8}_\d{6}$')


def file_signature(path: str) -> Optional[tuple]:
    """``(inode, mtime_ns, size)`` of a file, ``None`` when there is none:
    tells whether a run wrote the file (an atomic write replaces it)."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_ino, st.st_mtime_ns, st.st_size


class RunFiles:
    """What a Runner creates in the work dir of ``cfg``, to remove it when
    the run is refused.

    Args:
        cfg (Config): the config the Runner will be built from (its
            ``work_dir`` and ``filename``); read at construction, before
            the Runner exists.
    """

    def __init__(self, cfg):
        self.work_dir = osp.abspath(cfg.get('work_dir') or '.')
        # the deepest folder that exists now: the Runner's makedirs may
        # create everything below it
        root = self.work_dir
        while not osp.isdir(root) and osp.dirname(root) != root:
            root = osp.dirname(root)
        self.existing_root = root
        self.before = set(os.listdir(self.work_dir)) if osp.isdir(
            self.work_dir) else set()
        filename = getattr(cfg, 'filename', None)
        self.config_name = osp.basename(filename) if filename else None
        self.config_backup = None
        if self.config_name in self.before:
            path = osp.join(self.work_dir, self.config_name)
            if osp.isfile(path):
                with open(path, 'rb') as f:
                    self.config_backup = f.read()
        self.runner = None

    def track(self, runner):
        """Note the built Runner (its exact log folder); returns it."""
        self.runner = runner
        return runner

    def _created(self) -> List[str]:
        """Paths this run's Runner created in the work dir."""
        if not osp.isdir(self.work_dir):
            return []
        now = set(os.listdir(self.work_dir)) - self.before
        names = set()
        if self.runner is not None:
            log_dir = osp.basename(osp.normpath(self.runner.log_dir))
            stamp = getattr(self.runner, 'timestamp', log_dir)
            names |= {n for n in (log_dir, f'{stamp}.py') if n in now}
        else:
            # built part-way: its log folder and (without a config file
            # name) config copy are the new timestamp-named entries
            names |= {n for n in now if _TIMESTAMP.match(n)
                      or (n.endswith('.py') and _TIMESTAMP.match(n[:-3]))}
        if self.config_name in now:
            names.add(self.config_name)
        return sorted(osp.join(self.work_dir, n) for n in names)

    def remove(self) -> List[str]:
        """Remove what this run created (see the module docstring) and
        restore a config copy it overwrote; returns the removed paths.
        Errors are ignored (another rank may have removed them first)."""
        from mmengine.dist import is_main_process
        removed = []
        for path in self._created():
            if osp.isdir(path) and not osp.islink(path):
                shutil.rmtree(path, ignore_errors=True)
            else:
                try:
                    os.remove(path)
                except OSError:
                    continue
            removed.append(path)
        if self.config_backup is not None and is_main_process():
            path = osp.join(self.work_dir, self.config_name)
            try:
                with open(path, 'rb') as f:
                    same = f.read() == self.config_backup
            except OSError:
                same = False
            if not same:
                try:
                    with open(path, 'wb') as f:
                        f.write(self.config_backup)
                except OSError:
                    pass
        # the folders the Runner created, when nothing else is in them
        d = self.work_dir
        while d != self.existing_root and osp.isdir(d):
            try:
                os.rmdir(d)  # only an empty folder
            except OSError:
                break
            removed.append(d)
            d = osp.dirname(d)
        return removed

    @contextmanager
    def on_refusal(self, started: Callable[[], bool] = lambda: False):
        """Run the block; when it raises and ``started()`` is false (the
        run did no work worth keeping, e.g. no search state written),
        :meth:`remove` what the Runner created, then re-raise."""
        try:
            yield self
        except Exception:
            try:
                keep = started()
            except Exception:  # noqa: BLE001  keep when in doubt
                keep = True
            if not keep:
                self.remove()
            raise
