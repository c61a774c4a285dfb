"""ser-hf download against an HTTP server on 127.0.0.1: resume, checksums, zip-slip / tar-slip refusal."""

import hashlib
import http.server
import io
import json
import tarfile
import threading
import zipfile

import pytest

import ser_hf.download as dl
from ser_hf.cli import main as cli
from ser_hf.download import DownloadError, UnsafeArchiveError, fetch, safe_extract


def zip_bytes(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name, data in members.items():
            z.writestr(name, data)
    return buf.getvalue()


def tar_bytes(members: list[tarfile.TarInfo], data: dict[str, bytes] | None = None) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as t:
        for m in members:
            payload = (data or {}).get(m.name, b"")
            m.size = len(payload) if m.isfile() else 0
            t.addfile(m, io.BytesIO(payload) if m.isfile() else None)
    return buf.getvalue()


def file_info(name, kind=tarfile.REGTYPE, linkname=""):
    m = tarfile.TarInfo(name)
    m.type, m.linkname = kind, linkname
    return m


RAVDESS_ZIP = zip_bytes({f"Actor_{a:02d}/03-01-01-01-01-01-{a:02d}.wav": b"RIFF" + bytes(40) for a in (1, 2)})
EMOVDB_TAR = tar_bytes([file_info("bea_Amused/amused_1-15_0001.wav")], {"bea_Amused/amused_1-15_0001.wav": b"x" * 100})
BIG = bytes(range(256)) * 4096  # 1 MiB


class Server:
    """Serves FILES with Range support; a path in DROP_ONCE is cut after half its bytes the first time."""

    def __init__(self):
        self.files: dict[str, bytes] = {}
        self.drop_once: set[str] = set()
        self.requests: list[tuple[str, str | None]] = []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                rng = self.headers.get("Range")
                server.requests.append((self.path, rng))
                body = server.files.get(self.path)
                if body is None:
                    self.send_error(404)
                    return
                start = int(rng.split("=")[1].split("-")[0]) if rng else 0
                if start >= len(body) and rng:
                    self.send_error(416)
                    return
                chunk = body[start:]
                self.send_response(206 if rng else 200)
                self.send_header("Content-Length", str(len(chunk)))
                self.end_headers()
                if self.path in server.drop_once:
                    server.drop_once.discard(self.path)
                    self.wfile.write(chunk[: len(chunk) // 2])
                    self.wfile.flush()
                    self.connection.shutdown(2)
                    return
                self.wfile.write(chunk)

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_port}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()


@pytest.fixture
def server(monkeypatch):
    s = Server()
    yield s
    s.httpd.shutdown()


def test_interrupted_download_resumes_and_verifies(server, tmp_path):
    server.files["/big.bin"] = BIG
    server.drop_once.add("/big.bin")
    md5 = hashlib.md5(BIG).hexdigest()
    with pytest.raises(DownloadError, match="run again to resume"):
        fetch(f"{server.url}/big.bin", tmp_path / "big.bin", md5, progress=False)
    part = tmp_path / "big.bin.part"
    assert 0 < part.stat().st_size < len(BIG) and not (tmp_path / "big.bin").exists()
    fetch(f"{server.url}/big.bin", tmp_path / "big.bin", md5, progress=False)
    assert (tmp_path / "big.bin").read_bytes() == BIG and not part.exists()
    assert server.requests[-1][1] == f"bytes={len(BIG) // 2}-"  # resumed from where it stopped
    n = len(server.requests)
    fetch(f"{server.url}/big.bin", tmp_path / "big.bin", md5, progress=False)  # idempotent: no new request
    assert len(server.requests) == n


def test_checksum_mismatch_keeps_the_file_aside(server, tmp_path):
    server.files["/f.zip"] = RAVDESS_ZIP
    with pytest.raises(DownloadError, match=r"md5 [0-9a-f]{32} does not match the expected 0{32}.*f.zip.bad-md5"):
        fetch(f"{server.url}/f.zip", tmp_path / "f.zip", "0" * 32, progress=False)
    assert (tmp_path / "f.zip.bad-md5").read_bytes() == RAVDESS_ZIP and not (tmp_path / "f.zip").exists()


def test_http_errors_name_the_url(server, tmp_path):
    with pytest.raises(DownloadError, match=r"/nothing.zip: HTTP 404"):
        fetch(f"{server.url}/nothing.zip", tmp_path / "n.zip", progress=False)


@pytest.mark.parametrize(
    ("archive", "message"),
    [
        (zip_bytes({"../evil.txt": b"x"}), "climbs out of the target"),
        (zip_bytes({"ok.txt": b"fine", "/etc/evil.txt": b"x"}), "absolute path"),
        (
            tar_bytes([file_info("ok/a.txt"), file_info("../../evil.txt")], {"ok/a.txt": b"a", "../../evil.txt": b"x"}),
            "climbs out",
        ),
        (tar_bytes([file_info("link", tarfile.SYMTYPE, "/etc/passwd")]), "is a link to '/etc/passwd'"),
        (tar_bytes([file_info("hard", tarfile.LNKTYPE, "../../x")]), "is a link"),
        (tar_bytes([file_info("dev", tarfile.CHRTYPE)]), "device or FIFO"),
    ],
    ids=["zip-dotdot", "zip-absolute", "tar-dotdot", "tar-symlink", "tar-hardlink", "tar-device"],
)
def test_malicious_archives_are_refused_and_write_nothing(tmp_path, archive, message):
    path = tmp_path / ("a.zip" if archive[:2] == b"PK" else "a.tar.gz")
    path.write_bytes(archive)
    target = tmp_path / "sandbox" / "target"
    before = sorted(tmp_path.rglob("*"))
    with pytest.raises(UnsafeArchiveError, match=message):
        safe_extract(path, target)
    assert not target.exists()  # not even the target folder was created
    assert sorted(tmp_path.rglob("*")) == before


def test_truncated_archive_is_an_error_and_extraction_is_idempotent(tmp_path):
    (tmp_path / "t.tar.gz").write_bytes(EMOVDB_TAR[: len(EMOVDB_TAR) // 2])
    with pytest.raises(DownloadError, match="corrupt or truncated archive"):
        safe_extract(tmp_path / "t.tar.gz", tmp_path / "out")
    (tmp_path / "ok.tar.gz").write_bytes(EMOVDB_TAR)
    assert safe_extract(tmp_path / "ok.tar.gz", tmp_path / "out2") == ["bea_Amused/amused_1-15_0001.wav"]
    assert safe_extract(tmp_path / "ok.tar.gz", tmp_path / "out2") == []  # done before: skipped


def test_download_commands_against_the_local_server(server, tmp_path, monkeypatch, capsys):
    md5 = hashlib.md5(RAVDESS_ZIP).hexdigest()
    record = {
        "files": [
            {
                "key": "Audio_Speech_Actors_01-24.zip",
                "checksum": f"md5:{md5}",
                "links": {"self": f"{server.url}/files/Audio_Speech_Actors_01-24.zip"},
            }
        ]
    }
    server.files["/api/records/1188976"] = json.dumps(record).encode()
    server.files["/files/Audio_Speech_Actors_01-24.zip"] = RAVDESS_ZIP
    server.files["/115/bea_Amused.tar.gz"] = EMOVDB_TAR
    monkeypatch.setattr(dl, "ZENODO_API", f"{server.url}/api/records")
    monkeypatch.setattr(dl, "OPENSLR_115", f"{server.url}/115")

    assert cli(["download", "ravdess", "--to", str(tmp_path), "--no_progress"]) == 0
    assert (tmp_path / "ravdess" / "Actor_02" / "03-01-01-01-01-01-02.wav").exists()
    assert cli(["download", "ravdess", "--to", str(tmp_path), "--no_progress"]) == 0  # idempotent re-run
    assert cli(["download", "emovdb", "--to", str(tmp_path), "--no_progress"]) == 0
    out = capsys.readouterr().out
    assert (tmp_path / "emovdb" / "bea_Amused" / "amused_1-15_0001.wav").exists()
    assert "skipped: bea_Angry.tar.gz" in out  # the other 19 archives are not on this server
    assert cli(["download", "anad", "--to", str(tmp_path)]) == 0
    assert "kaggle.com/datasets/suso172/arabic-natural-audio-dataset" in capsys.readouterr().out

    record["files"][0]["checksum"] = "md5:" + "1" * 32
    server.files["/api/records/1188976"] = json.dumps(record).encode()
    assert cli(["download", "ravdess", "--to", str(tmp_path / "again"), "--no_progress"]) == 2
    assert "does not match the expected" in capsys.readouterr().err
    assert (tmp_path / "again" / "Audio_Speech_Actors_01-24.zip.bad-md5").exists()


def test_decompression_bombs_are_refused_before_writing(tmp_path):
    import zipfile

    bomb = tmp_path / "bomb.zip"
    with zipfile.ZipFile(bomb, "w", compression=zipfile.ZIP_DEFLATED) as z:
        z.writestr("Actor_01/zeros.wav", b"\0" * (20 * 2**20))  # 20 MB of zeros: about 20 KB compressed
    with pytest.raises(UnsafeArchiveError, match=r"would expand to 20,971,520 bytes .*decompression bomb"):
        safe_extract(bomb, tmp_path / "out")
    assert not (tmp_path / "out").exists()
    with pytest.raises(UnsafeArchiveError, match="limits are 1,000 bytes"):
        safe_extract(bomb, tmp_path / "out", max_bytes=1000, max_ratio=1e9)
    assert safe_extract(bomb, tmp_path / "out", max_ratio=1e9) == ["Actor_01/zeros.wav"]


@pytest.mark.slow
def test_corpora_are_fetched_on_first_use_and_then_read_offline(server, monkeypatch, tmp_path, caplog):
    from ser_hf import load_corpus
    from ser_hf.training import main as train

    from .conftest import TINY_MELCNN, write_ravdess_tree

    tree = write_ravdess_tree(tmp_path / "tree", actors=range(1, 4), seconds=0.1)
    members = {str(p.relative_to(tree)): p.read_bytes() for p in sorted(tree.rglob("*.wav"))}
    archive = zip_bytes(members)
    record = {
        "files": [
            {
                "key": "Audio_Speech_Actors_01-24.zip",
                "checksum": f"md5:{hashlib.md5(archive).hexdigest()}",
                "links": {"self": f"{server.url}/files/Audio_Speech_Actors_01-24.zip"},
            }
        ]
    }
    server.files["/api/records/1188976"] = json.dumps(record).encode()
    server.files["/files/Audio_Speech_Actors_01-24.zip"] = archive
    monkeypatch.setattr(dl, "ZENODO_API", f"{server.url}/api/records")
    cache = tmp_path / "cache"
    ds = load_corpus("ravdess", cache_dir=cache, verify_counts=False)  # no data_dir: fetched
    assert len(ds) == 180 and "downloading it once" in caplog.text
    assert (cache / "ser_hf_corpora" / "ravdess" / "Actor_03").is_dir()
    n = len(server.requests)
    assert len(load_corpus("ravdess", cache_dir=cache, verify_counts=False)) == 180
    assert len(server.requests) == n  # the second call needs no network
    # the README's main command without --data_dir: training fetches the same way
    args = ["--corpus", "ravdess", "--cache_dir", str(cache), "--verify_counts", "false", "--protocol", "speakers"]
    args += ["--test_speakers", "Actor_01", "--val_speakers", "Actor_02", "--output_dir", str(tmp_path / "run")]
    args += [*TINY_MELCNN, "--max_steps", "1", "--max_duration_s", "0.1", "--report_to", "none"]
    assert train(args)["split"]["train_speakers"] == ["Actor_03"]
    with pytest.raises(ValueError, match="ANAD cannot be fetched automatically"):
        load_corpus("anad", cache_dir=cache)
    with pytest.raises(ValueError, match="--data_dir is required for corpus 'folder'"):
        train(["--corpus", "folder", "--output_dir", str(tmp_path / "x")])
