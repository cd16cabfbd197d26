"""Crash-safe checkpoint files: atomic writes and a readability check that names the file."""

import os
import os.path as osp
import re
import tempfile
import zipfile
from typing import List, Optional, Union

from mmengine.fileio import LocalBackend, register_backend

#: ``backend_args=dict(backend=ATOMIC_BACKEND)`` makes mmengine's ``CheckpointHook`` write
#: through :class:`AtomicLocalBackend`.
ATOMIC_BACKEND = 'rlkd_atomic_local'


class AtomicLocalBackend(LocalBackend):
    """mmengine's local file backend whose writes are atomic.

    ``put`` / ``put_text`` write a temporary file in the target's folder, flush it to disk and
    rename it over the target (``os.replace``), so a process killed while saving leaves either
    the old file or the complete new one, never a truncated file under a checkpoint's name.
    ``CheckpointHook`` updates ``last_checkpoint`` only after ``save_checkpoint`` returns, i.e.
    after the rename.
    """

    def put(self, obj: bytes, filepath: Union[str, os.PathLike]) -> None:
        _atomic_write(str(filepath), obj)

    def put_text(
        self, obj: str, filepath: Union[str, os.PathLike], encoding: str = 'utf-8'
    ) -> None:
        _atomic_write(str(filepath), obj.encode(encoding))


def _atomic_write(path: str, data: bytes) -> None:
    folder = osp.dirname(osp.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f'.{osp.basename(path)}.', suffix='.tmp', dir=folder)
    try:
        with os.fdopen(fd, 'wb') as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if osp.exists(tmp):
            os.remove(tmp)
        raise


register_backend(ATOMIC_BACKEND, AtomicLocalBackend, force=True)


class UnreadableCheckpointError(RuntimeError):
    """A checkpoint file that cannot be read (truncated, or not a checkpoint)."""


def check_checkpoint_readable(path: str, what: str = 'checkpoint') -> None:
    """Raise ``FileNotFoundError`` or :class:`UnreadableCheckpointError` naming ``path``.

    A torch zip checkpoint is checked without unpickling: its central directory must be present
    and every member's CRC must match (what a write killed half-way breaks). Other files (the
    legacy format) are loaded with ``torch.load(weights_only=True)``.
    """
    if not osp.isfile(path):
        raise FileNotFoundError(f'{what} not found: {path}')
    if osp.getsize(path) == 0:
        raise UnreadableCheckpointError(f'{what} {path} is unreadable: the file is empty')
    if zipfile.is_zipfile(path):
        try:
            with zipfile.ZipFile(path) as archive:
                bad = archive.testzip()
        except (zipfile.BadZipFile, OSError, EOFError) as err:
            raise UnreadableCheckpointError(
                f'{what} {path} is unreadable: truncated or not a checkpoint ({err})'
            ) from err
        if bad is not None:
            raise UnreadableCheckpointError(
                f'{what} {path} is unreadable: member {bad} is corrupt (truncated write?)'
            )
        return
    import torch

    try:
        torch.load(path, map_location='cpu', weights_only=True)
    except Exception as err:
        raise UnreadableCheckpointError(
            f'{what} {path} is unreadable: truncated or not a checkpoint '
            f'({type(err).__name__}: {err})'
        ) from err


def _checkpoint_order(path: str):
    """Sort key: the number in ``epoch_N.pth`` / ``iter_N.pth``, then the modification time."""
    match = re.search(r'(\d+)\.pth$', osp.basename(path))
    return (int(match.group(1)) if match else -1, osp.getmtime(path))


def checkpoints_in(work_dir: str) -> List[str]:
    """The ``*.pth`` files of ``work_dir``, newest first."""
    if not osp.isdir(work_dir):
        return []
    files = [osp.join(work_dir, f) for f in os.listdir(work_dir) if f.endswith('.pth')]
    return sorted(files, key=_checkpoint_order, reverse=True)


def latest_readable_checkpoint(work_dir: str, logger=None) -> Optional[str]:
    """The checkpoint an automatic resume should use: the one ``last_checkpoint`` names if it
    is readable, else the newest readable ``*.pth`` of ``work_dir`` (a warning names each
    unreadable one). None when the work dir holds no checkpoint at all.

    Raises:
        UnreadableCheckpointError: checkpoints exist but none is readable.
    """
    candidates = []
    pointer = osp.join(work_dir, 'last_checkpoint')
    if osp.isfile(pointer):
        with open(pointer) as f:
            named = f.read().strip()
        if named:
            candidates.append(named if osp.isabs(named) else osp.join(work_dir, named))
    candidates += [p for p in checkpoints_in(work_dir) if p not in candidates]
    if not candidates:
        return None
    problems = []
    for path in candidates:
        try:
            check_checkpoint_readable(path)
            return path
        except (FileNotFoundError, UnreadableCheckpointError) as err:
            problems.append(str(err))
            if logger is not None:
                logger(f'{err}; trying an older checkpoint')
    raise UnreadableCheckpointError(
        f'no readable checkpoint to resume from in {work_dir}: ' + '; '.join(problems)
    )


#: URL schemes a teacher checkpoint may use besides a local path.
REMOTE_PREFIXES = (
    'http://',
    'https://',
    'torchvision://',
    'modelzoo://',
    'open-mmlab://',
    'openmmlab://',
)


def resolve_checkpoint(path: str) -> str:
    """A local file for ``path``: a local path as it is; an ``http(s)://`` URL, or a
    ``torchvision://`` / ``open-mmlab://`` model-zoo name (resolved with mmengine's tables), is
    downloaded once into torch hub's ``checkpoints`` folder (``$TORCH_HOME``), checking the
    SHA-256 prefix that OpenMMLab / torchvision file names carry. Nothing is unpickled here.

    Raises:
        ValueError: another scheme (``s3://``, ``mmcls://``, ...), naming it.
    """
    if '://' not in path:
        return path
    url = path
    if path.startswith(('torchvision://', 'modelzoo://')):
        from mmengine.runner.checkpoint import get_torchvision_models

        url = get_torchvision_models()[path.split('://', 1)[1]]
    elif path.startswith(('open-mmlab://', 'openmmlab://')):
        from mmengine.runner.checkpoint import (
            _get_mmengine_home,
            get_deprecated_model_names,
            get_external_models,
        )

        name = path.split('://', 1)[1]
        name = get_deprecated_model_names().get(name, name)
        url = get_external_models()[name]
        if not url.startswith(('http://', 'https://')):
            return osp.join(_get_mmengine_home(), url)
    elif not path.startswith(('http://', 'https://')):
        raise ValueError(
            f'unsupported checkpoint location {path}: use a local path, http(s)://, '
            'torchvision:// or open-mmlab://'
        )
    from urllib.parse import urlparse

    import torch

    folder = osp.join(torch.hub.get_dir(), 'checkpoints')
    os.makedirs(folder, exist_ok=True)
    filename = osp.basename(urlparse(url).path)
    local = osp.join(folder, filename)
    if not osp.isfile(local):
        match = torch.hub.HASH_REGEX.search(filename)
        torch.hub.download_url_to_file(
            url, local, hash_prefix=match.group(1) if match else None, progress=False
        )
    return local


def load_weights_only(path: str, what: str = 'checkpoint', source: Optional[str] = None):
    """``torch.load(path, weights_only=True)`` (with rlkd_mm's allowlist of mmengine's own
    globals). A file that needs any other pickled object is refused with a message naming
    ``source`` (the URL it came from) and the file: a checkpoint from the network is untrusted
    input and is never unpickled fully."""
    import pickle

    import torch

    try:
        return torch.load(path, map_location='cpu', weights_only=True)
    except pickle.UnpicklingError as err:
        where = f'{source} (downloaded to {path})' if source and source != path else path
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise UnreadableCheckpointError(
            f'{what} {where} holds pickled objects outside the allowed weights-only set; it is '
            f'not unpickled fully (it may come from an untrusted source): {first}'
        ) from err
