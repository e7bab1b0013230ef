"""`attnstep data get`: fetched from a local HTTP server standing in for the origin (no network here)."""

from __future__ import annotations

import gzip
import hashlib
import http.server
import io
import threading
import zipfile
from pathlib import Path

import pytest
from typer.testing import CliRunner

from attnstep.cli import app
from attnstep.data import downloads as datasets
from attnstep.data.downloads import Dataset, Download, Unpack, default_data_dir
from attnstep.errors import AttnstepError

runner = CliRunner()
CAPTIONS = {"val.fr.gz": "un chien .\nune femme .\n", "val.en.gz": "a dog .\na woman .\n"}
PAIRS = "Go.\tVa !\nHi.\tSalut !\n"


def gz(text: str) -> bytes:
    return gzip.compress(text.encode(), mtime=0)


def zipped(members: dict[str, str]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, text in members.items():
            archive.writestr(name, text)
    return buffer.getvalue()


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def origin(tmp_path):
    """A folder served over HTTP on 127.0.0.1: yields (folder, base URL, list of requested paths)."""
    folder = tmp_path / "origin"
    folder.mkdir()
    requested: list[str] = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, directory=str(folder), **kwargs)

        def do_GET(self):
            requested.append(self.path)
            super().do_GET()

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    # A short poll, so that shutdown() at teardown returns at once rather than after half a second.
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    yield folder, f"http://127.0.0.1:{server.server_address[1]}/", requested
    server.shutdown()
    server.server_close()


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return tmp_path / "cache" / "attnstep" / "data"


@pytest.fixture
def captions(origin, monkeypatch):
    """A Multi30k-like dataset of two small gzip files, pinned to their sha256s, at the local origin."""
    folder, url, _ = origin
    for name, text in CAPTIONS.items():
        (folder / name).write_bytes(gz(text))
    dataset = Dataset(
        name="captions",
        origin=url,
        downloads=tuple(Download(name, len(gz(text)), sha(gz(text))) for name, text in CAPTIONS.items()),
        unpack=None,
        license="# Captions\n\nLicense: for tests.\n",
    )
    monkeypatch.setitem(datasets.DATASETS, "captions", dataset)
    return dataset


def get(*args):
    result = runner.invoke(app, ["data", "get", *map(str, args)])
    assert "Traceback" not in result.output
    return result


def test_files_arrive_checked_with_their_license(captions, cache, origin):
    result = get("captions")
    assert result.exit_code == 0, result.output
    folder = cache / "captions"
    assert sorted(p.name for p in folder.iterdir()) == ["LICENSE.md", "val.en.gz", "val.fr.gz"]
    assert gzip.decompress((folder / "val.fr.gz").read_bytes()).decode() == CAPTIONS["val.fr.gz"]
    assert (folder / "LICENSE.md").read_text() == captions.license
    assert sorted(p.name for p in cache.iterdir()) == ["captions"]  # no staging folder left
    assert f"captions: 2 files in {folder}" in result.stdout
    # A second run checks what is there and fetches nothing.
    requested = origin[2]
    count = len(requested)
    again = get("captions")
    assert again.exit_code == 0 and "already in" in again.stdout and len(requested) == count


def test_a_wrong_sha256_installs_nothing(captions, cache, origin):
    (origin[0] / "val.en.gz").write_bytes(gz("a cat .\na man .\n"))
    result = get("captions")
    assert result.exit_code == 1 and result.stderr.count("\n") == 1
    assert "val.en.gz has sha256" in result.stderr and "nothing was installed" in result.stderr
    assert list(cache.iterdir()) == []


def test_a_missing_file_is_one_line(captions, cache, origin):
    (origin[0] / "val.en.gz").unlink()
    result = get("captions")
    assert result.exit_code == 1 and result.stderr.startswith(
        f"attnstep: error: cannot download {origin[1]}val.en.gz: "
    )
    assert list(cache.iterdir()) == []


def test_a_longer_answer_is_cut_off(captions, cache, origin):
    (origin[0] / "val.en.gz").write_bytes(gz(CAPTIONS["val.en.gz"]) + b"\0" * 100_000)
    result = get("captions")
    assert result.exit_code == 1 and "is larger than" in result.stderr
    assert list(cache.iterdir()) == []


def test_a_damaged_install_is_not_replaced_silently(captions, cache):
    assert get("captions").exit_code == 0
    (cache / "captions" / "val.fr.gz").write_bytes(b"edited")
    result = get("captions")
    assert result.exit_code == 1 and "does not have its pinned sha256; remove it" in result.stderr
    assert (cache / "captions" / "val.fr.gz").read_bytes() == b"edited"


def test_a_zip_member_is_unpacked_and_checked(origin, cache, monkeypatch):
    folder, url, _ = origin
    archive = zipped({"fra-eng/fra.txt": PAIRS, "fra-eng/_about.txt": "about"})
    (folder / "fra-eng.zip").write_bytes(archive)
    dataset = Dataset(
        name="pairs",
        origin=url,
        downloads=(Download("fra-eng.zip", len(archive), sha(archive)),),
        unpack=Unpack("fra-eng.zip", "fra-eng/fra.txt", "fra-eng.tsv.gz", sha(PAIRS.encode())),
        license="CC-BY 2.0\n",
    )
    monkeypatch.setitem(datasets.DATASETS, "pairs", dataset)
    assert get("pairs").exit_code == 0
    installed = cache / "pairs"
    assert sorted(p.name for p in installed.iterdir()) == ["LICENSE.md", "fra-eng.tsv.gz"]
    assert gzip.decompress((installed / "fra-eng.tsv.gz").read_bytes()).decode() == PAIRS
    assert datasets.verify(dataset, installed) is None


def test_a_mirror_serves_the_same_files(captions, cache, origin, tmp_path, monkeypatch):
    # The dataset's origin is unreachable; the same files on a mirror pass the same sha256 checks.
    monkeypatch.setitem(
        datasets.DATASETS, "captions", Dataset(**{**vars(captions), "origin": "http://127.0.0.1:9/nowhere/"})
    )
    assert get("captions", "--mirror", origin[1]).exit_code == 0
    assert (cache / "captions" / "val.fr.gz").is_file()


def test_an_unknown_name_lists_the_known_ones(cache):
    result = get("imagenet")
    assert result.exit_code == 1 and "attnstep can get multi30k, tatoeba" in result.stderr


def test_the_cache_follows_xdg_cache_home(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert default_data_dir("multi30k") == tmp_path / "attnstep" / "data" / "multi30k"
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/path")  # the XDG spec says to ignore it
    assert default_data_dir("multi30k") == Path.home() / ".cache" / "attnstep" / "data" / "multi30k"


def test_the_real_pins_name_the_files_commands_read():
    """Multi30k's pins cover every split `eval --split` documents, in the languages the shipped model uses."""
    names = {d.name for d in datasets.MULTI30K.downloads}
    for split in ("train", "val", "test_2016_flickr", "test_2017_flickr", "test_2017_mscoco", "test_2018_flickr"):
        assert {f"{split}.fr.gz", f"{split}.en.gz"} <= names
    assert datasets.TATOEBA.files == ("fra-eng.tsv.gz",)


def test_a_recorded_corpus_is_found_where_it_was_or_in_the_cache(tmp_path, cache):
    here = tmp_path / "fra-eng.tsv.gz"
    here.write_bytes(gz(PAIRS))
    assert datasets.locate(str(here), "--heldout-corpus") == here
    gone = "/elsewhere/tatoeba-fr-en/fra-eng.tsv.gz"  # a path on the machine that trained the model
    with pytest.raises(
        AttnstepError, match=f"{gone} is missing: run `attnstep data get tatoeba`, or give --heldout-corpus FILE"
    ):
        datasets.locate(gone, "--heldout-corpus")
    (cache / "tatoeba").mkdir(parents=True)
    (cache / "tatoeba" / "fra-eng.tsv.gz").write_bytes(gz(PAIRS))
    assert datasets.locate(gone, "--heldout-corpus") == cache / "tatoeba" / "fra-eng.tsv.gz"
    with pytest.raises(AttnstepError, match=r"^/elsewhere/mine\.tsv is missing: give --heldout-corpus FILE$"):
        datasets.locate("/elsewhere/mine.tsv", "--heldout-corpus")
