"""ImageNet-style classification dataset (for supernet pre-training).

DetNAS (Sec. 4.1) pre-trains the supernet and the searched subnets on
ImageNet. This reads the two usual ImageNet layouts without any extra
dependency: one folder per class, or a list file of ``path label`` lines.
"""
import logging
import os.path as osp
from typing import List, Mapping, Optional, Sequence, Tuple, Union

from mmengine.dataset import BaseDataset
from mmengine.fileio import (exists, get_text, isdir, join_path,
                             list_dir_or_file)
from mmengine.logging import print_log

from mmdetnas.registry import DATASETS

#: File extensions (lower case) read in the folder layout.
IMG_EXTENSIONS: Tuple[str, ...] = ('.jpg', '.jpeg', '.png')


@DATASETS.register_module()
class ImageNetDataset(BaseDataset):
    """ImageNet-style single-label classification dataset.

    Two layouts are read (``img_root`` below is ``data_root`` joined with
    ``data_prefix['img_path']``):

    (a) folders, when ``ann_file`` is empty::

            img_root/<class_name>/**/<image>.{JPEG,jpg,jpeg,png}

        Classes are the sorted sub-folder names of ``img_root`` unless
        ``classes`` (or ``metainfo['classes']``) is given, in which case only
        those folders are read, with labels in the given order. Extensions
        match case-insensitively; class folders are searched recursively.

    (b) a list file ``ann_file`` (relative to ``data_root``) with one
        ``relative/path label`` line per image, the path relative to
        ``img_root`` and the label an int in ``[0, num_classes)``. Blank lines
        are skipped; paths may contain spaces (the label is the last field).
        Image files are not checked here (that would stat every file), a
        missing one fails when it is loaded.

    Every data info is ``dict(img_path=str, gt_label=int)`` (plus
    ``sample_idx`` added by mmengine).

    Args:
        ann_file (str): List file for layout (b); ``''`` for layout (a).
        data_root (str): Root joined to ``ann_file`` and
            ``data_prefix['img_path']`` when they are relative.
        data_prefix (dict | str): ``dict(img_path=...)``, the image folder;
            a str is taken as ``img_path``.
        classes (Sequence[str] | str, optional): Class names in label order,
            or the path of a text file with one class name per line
            (relative paths are tried as given, then under ``data_root``).
            Overrides ``metainfo['classes']``. In layout (b) without classes
            the labels are only checked to be non-negative and
            ``metainfo['classes']`` stays unset.
        metainfo (dict, optional): Extra meta information.
        extensions (Sequence[str]): Image extensions for layout (a),
            case-insensitive.
        backend_args (dict, optional): mmengine file backend arguments.
        **kwargs: Other :class:`mmengine.dataset.BaseDataset` arguments
            (``pipeline``, ``test_mode``, ``indices``, ``lazy_init`` ...).

    Raises:
        FileNotFoundError: the image folder, a class folder, the
            ``ann_file`` or the ``classes`` file does not exist.
        ValueError: a malformed list line (file and line number given), a
            label out of range, no class folders, an empty dataset, empty or
            duplicate class names.
    """

    METAINFO: dict = dict()

    def __init__(self,
                 ann_file: str = '',
                 data_root: str = '',
                 data_prefix: Union[dict, str] = dict(img_path=''),
                 classes: Union[None, str, Sequence[str]] = None,
                 metainfo: Optional[Mapping] = None,
                 extensions: Sequence[str] = IMG_EXTENSIONS,
                 backend_args: Optional[dict] = None,
                 **kwargs):
        self.backend_args = backend_args
        self.extensions = tuple(e.lower() for e in extensions)
        if isinstance(data_prefix, str):
            data_prefix = dict(img_path=data_prefix)
        if 'img_path' not in data_prefix:
            raise ValueError('data_prefix must have an "img_path" key, got '
                             f'{dict(data_prefix)}')
        metainfo = dict(metainfo or {})
        if classes is None:
            classes = metainfo.get('classes')
        if classes is not None:
            metainfo['classes'] = self._load_classes(classes, data_root or '')
        super().__init__(
            ann_file=ann_file,
            metainfo=metainfo,
            data_root=data_root,
            data_prefix=data_prefix,
            **kwargs)

    # ------------------------------------------------------------- classes
    def _load_classes(self, classes: Union[str, Sequence[str]],
                      data_root: str) -> Tuple[str, ...]:
        """Class names from a sequence or a text file (one per line)."""
        if isinstance(classes, str):
            path = classes
            if (not exists(path, backend_args=self.backend_args) and data_root
                    and not osp.isabs(path)):
                path = join_path(
                    data_root, path, backend_args=self.backend_args)
            if not exists(path, backend_args=self.backend_args):
                raise FileNotFoundError(
                    f'classes file {classes!r} not found (also tried under '
                    f'data_root {data_root!r})')
            text = get_text(path, backend_args=self.backend_args)
            names = [ln.strip() for ln in text.splitlines() if ln.strip()]
            source = f'classes file {path!r}'
        else:
            names = [str(c) for c in classes]
            source = 'classes'
        if not names:
            raise ValueError(f'{source} is empty')
        if any(not n for n in names):
            raise ValueError(f'{source} has an empty class name')
        if len(set(names)) != len(names):
            dup = sorted({n for n in names if names.count(n) > 1})
            raise ValueError(f'{source} has duplicate names: {dup}')
        return tuple(names)

    # --------------------------------------------------------------- loading
    def load_data_list(self) -> List[dict]:
        """Read the list file or scan the class folders.

        Returns:
            list[dict]: ``dict(img_path, gt_label)`` per image, in file order
            (list layout) or class-then-path order (folder layout).
        """
        img_root = self.data_prefix['img_path']
        classes = self._metainfo.get('classes')
        if self.ann_file:
            data_list = self._load_ann_file(img_root, classes)
            where = f'list file {self.ann_file!r}'
        else:
            data_list, classes = self._scan_folders(img_root, classes)
            self._metainfo['classes'] = tuple(classes)
            where = f'class folders of {img_root!r}'
        if not data_list:
            raise ValueError(f'ImageNetDataset is empty: no image found in '
                             f'the {where}')
        return data_list

    def _load_ann_file(self, img_root: str,
                       classes: Optional[Sequence[str]]) -> List[dict]:
        if not exists(self.ann_file, backend_args=self.backend_args):
            raise FileNotFoundError(
                f'ann_file {self.ann_file!r} does not exist')
        text = get_text(self.ann_file, backend_args=self.backend_args)
        num_classes = len(classes) if classes is not None else None
        data_list = []
        for lineno, line in enumerate(text.splitlines(), 1):
            line = line.strip()
            if not line:
                continue
            parts = line.rsplit(maxsplit=1)
            label = None
            if len(parts) == 2:
                try:
                    label = int(parts[1])
                except ValueError:
                    pass
            if label is None:
                raise ValueError(
                    f'{self.ann_file}, line {lineno}: expected '
                    f'"<relative/path> <int label>", got {line!r}')
            if label < 0 or (num_classes is not None and label >= num_classes):
                bound = '' if num_classes is None else f', {num_classes}'
                raise ValueError(
                    f'{self.ann_file}, line {lineno}: label {label} out of '
                    f'range [0{bound})')
            data_list.append(
                dict(
                    img_path=join_path(
                        img_root, parts[0], backend_args=self.backend_args),
                    gt_label=label))
        return data_list

    def _scan_folders(self, img_root: str, classes: Optional[Sequence[str]]
                      ) -> Tuple[List[dict], Sequence[str]]:
        if not isdir(img_root, backend_args=self.backend_args):
            raise FileNotFoundError(
                f'image folder {img_root!r} (data_root + '
                'data_prefix["img_path"]) does not exist or is not a folder')
        if classes is None:
            classes = sorted(
                list_dir_or_file(
                    img_root,
                    list_dir=True,
                    list_file=False,
                    backend_args=self.backend_args))
            if not classes:
                raise ValueError(f'no class folder in {img_root!r}; expected '
                                 '<img_path>/<class>/<image> or an ann_file')
        data_list = []
        for label, name in enumerate(classes):
            folder = join_path(img_root, name, backend_args=self.backend_args)
            if not isdir(folder, backend_args=self.backend_args):
                raise FileNotFoundError(
                    f'class folder {folder!r} of class {name!r} (label '
                    f'{label}) does not exist')
            files = sorted(
                f for f in list_dir_or_file(
                    folder,
                    list_dir=False,
                    list_file=True,
                    recursive=True,
                    backend_args=self.backend_args)
                if f.lower().endswith(self.extensions))
            if not files:
                print_log(
                    f'ImageNetDataset: class folder {folder!r} has no image '
                    f'with extension in {self.extensions}',
                    logger='current',
                    level=logging.WARNING)
            data_list.extend(
                dict(
                    img_path=join_path(
                        folder, f, backend_args=self.backend_args),
                    gt_label=label) for f in files)
        return data_list, classes
