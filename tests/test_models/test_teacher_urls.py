"""Teachers from URLs: downloaded once from a server on 127.0.0.1, loaded weights-only; a file
that needs more than the allowlist is refused."""

import argparse
import functools
import http.server
import threading

import pytest
import torch
from test_classifier_distiller import build_distiller, save_teacher

from rlkd_mm.utils import UnreadableCheckpointError
from rlkd_mm.utils.fileio import resolve_checkpoint


@pytest.fixture
def server(tmp_path):
    """An HTTP server on 127.0.0.1 serving ``tmp_path / 'served'``; yields (folder, base URL)."""
    folder = tmp_path / 'served'
    folder.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(folder))
    httpd = http.server.ThreadingHTTPServer(('127.0.0.1', 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield folder, f'http://127.0.0.1:{httpd.server_address[1]}'
    finally:
        httpd.shutdown()
        httpd.server_close()


@pytest.fixture
def hub_dir(tmp_path):
    before = torch.hub.get_dir()
    torch.hub.set_dir(str(tmp_path / 'hub'))
    yield tmp_path / 'hub'
    torch.hub.set_dir(before)


def test_teacher_from_url_is_downloaded_once_and_loaded(server, hub_dir, tmp_path):
    folder, base = server
    teacher, path = save_teacher(tmp_path)
    (folder / 'teacher.pth').write_bytes(open(path, 'rb').read())
    model = build_distiller(teacher_ckpt=f'{base}/teacher.pth')
    for key, value in teacher.state_dict().items():
        assert torch.equal(model.teacher.state_dict()[key], value), key
    cached = hub_dir / 'checkpoints' / 'teacher.pth'
    assert cached.is_file()
    (folder / 'teacher.pth').unlink()  # a second build reads the cache, not the server
    build_distiller(teacher_ckpt=f'{base}/teacher.pth')


def test_teacher_needing_more_than_weights_is_refused(server, hub_dir, tmp_path):
    folder, base = server
    teacher, _ = save_teacher(tmp_path)
    torch.save(
        dict(state_dict=teacher.state_dict(), meta=argparse.Namespace(note='arbitrary object')),
        folder / 'evil.pth',
    )
    with pytest.raises(UnreadableCheckpointError, match=r'evil\.pth.*not unpickled fully'):
        build_distiller(teacher_ckpt=f'{base}/evil.pth')


def test_hash_prefix_in_the_file_name_is_checked(server, hub_dir, tmp_path):
    folder, base = server
    (folder / 'teacher-deadbeef.pth').write_bytes(b'not the file the name promises')
    with pytest.raises(RuntimeError, match='(?i)hash'):
        resolve_checkpoint(f'{base}/teacher-deadbeef.pth')


def test_unsupported_scheme_is_named():
    with pytest.raises(ValueError, match='s3://bucket/t.pth'):
        resolve_checkpoint('s3://bucket/t.pth')
    assert resolve_checkpoint('local/t.pth') == 'local/t.pth'
