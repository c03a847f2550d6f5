"""One contract suite for every media storage: a local folder and a real S3-compatible server (moto)."""

from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlparse
from urllib.request import urlopen

import pytest

from kinema.storage.base import MediaStorage, MissingMedia, StorageError, verify
from kinema.storage.local import LocalStorage
from kinema.storage.s3 import S3Storage

SECRET = b"test-secret"


@pytest.fixture(scope="module")
def s3_server() -> Iterator[str]:
    moto_server = pytest.importorskip("moto.server")
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture(params=["local", "s3"])
def storage(request: pytest.FixtureRequest, tmp_path: Path) -> MediaStorage:
    if request.param == "local":
        return LocalStorage(tmp_path / "media", base_url="http://kinema.test", secret=SECRET)
    endpoint = request.getfixturevalue("s3_server")
    bucket = f"b{abs(hash(tmp_path)) % 10**8}"
    store = S3Storage(bucket, endpoint_url=endpoint, access_key="test", secret_key="test", prefix="kinema")
    store.client.create_bucket(Bucket=bucket)
    return store


def test_round_trip_of_bytes_and_files(storage: MediaStorage, tmp_path: Path) -> None:
    storage.put_bytes("tasks/1/a.bin", b"hello", content_type="application/octet-stream")
    source = tmp_path / "clip.mp4"
    source.write_bytes(b"\x00" * 1000)
    storage.put_file("tasks/1/clip.mp4", source, content_type="video/mp4")
    assert storage.get_bytes("tasks/1/a.bin") == b"hello"
    assert storage.download("tasks/1/clip.mp4", tmp_path / "back.mp4").read_bytes() == b"\x00" * 1000
    assert storage.exists("tasks/1/clip.mp4")


def test_delete_and_missing_keys(storage: MediaStorage) -> None:
    storage.put_bytes("x/y.txt", b"1", content_type="text/plain")
    storage.delete("x/y.txt")
    storage.delete("x/y.txt")  # deleting twice is fine
    assert not storage.exists("x/y.txt")
    with pytest.raises(MissingMedia, match="expired or been deleted"):
        storage.get_bytes("x/y.txt")


@pytest.mark.parametrize("key", ["../etc/passwd", "/abs", "a//b", "a/../b", "a b", "", "a/./b"])
def test_unsafe_keys_are_refused(storage: MediaStorage, key: str) -> None:
    with pytest.raises(StorageError, match="invalid storage key"):
        storage.put_bytes(key, b"x", content_type="text/plain")


def test_links_are_signed_and_expire(tmp_path: Path) -> None:
    now = [1_000_000.0]
    store = LocalStorage(tmp_path, base_url="https://k.example/", secret=SECRET, clock=lambda: now[0])
    url = urlparse(store.url("tasks/7/video-0.mp4", expires_in=60))
    assert url.path == "/media/tasks/7/video-0.mp4"
    query = {k: v[0] for k, v in parse_qs(url.query).items()}
    expires, signature = int(query["expires"]), query["signature"]
    assert verify(SECRET, "tasks/7/video-0.mp4", expires, signature, now=now[0])
    assert not verify(SECRET, "tasks/7/video-1.mp4", expires, signature, now=now[0])
    assert not verify(b"other", "tasks/7/video-0.mp4", expires, signature, now=now[0])
    assert not verify(SECRET, "tasks/7/video-0.mp4", expires, signature, now=now[0] + 61)


def test_s3_links_download_without_credentials(s3_server: str) -> None:
    store = S3Storage("public-test", endpoint_url=s3_server, access_key="test", secret_key="test")
    store.client.create_bucket(Bucket="public-test")
    store.put_bytes("v.mp4", b"movie", content_type="video/mp4")
    with urlopen(store.url("v.mp4", expires_in=300), timeout=10) as response:
        assert response.read() == b"movie"


def test_local_writes_are_atomic(tmp_path: Path) -> None:
    store = LocalStorage(tmp_path, base_url="http://x", secret=SECRET)

    def boom(handle: object) -> None:
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        store._write("a/b.mp4", boom)
    assert not store.exists("a/b.mp4")
    assert not list(tmp_path.rglob("*.partial"))


def test_a_signature_with_non_ascii_characters_is_invalid_not_an_error() -> None:
    from kinema.storage.base import verify

    assert verify(b"s" * 32, "tasks/1/video-0.mp4", 2**40, "|Òð\x02ú󨮄", now=0.0) is False
