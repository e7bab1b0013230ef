"""``attnstep data get NAME``: public corpora from their origin into the user's cache, checked by sha256.

Every file is pinned to a commit of the repository that publishes it and to its sha256, so what a
model is trained and scored on is exactly what its model card names. The install is atomic: the
files are fetched and checked in a hidden folder beside the destination, which is renamed into
place only when all of them match; the license and citation are written beside them (LICENSE.md).

The cache is ``$XDG_CACHE_HOME/attnstep/data/NAME`` (``~/.cache/attnstep/data/NAME`` by default);
``eval`` and ``train`` read from there unless ``--data`` points elsewhere.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from io import BufferedIOBase
from pathlib import Path

from attnstep.data.files import shared_mode
from attnstep.errors import AttnstepError

TIMEOUT = 60  # seconds without a byte before a download is given up


@dataclass(frozen=True)
class Download:
    name: str  # file name at the origin, and in the cache unless unpacked
    size: int  # bytes; a longer answer is refused before it fills the disk
    sha256: str


@dataclass(frozen=True)
class Unpack:
    """A member of a downloaded zip, stored gzip-compressed under another name."""

    archive: str
    member: str
    name: str
    sha256: str  # of the member's bytes (the stored file's uncompressed content)


@dataclass(frozen=True)
class Dataset:
    name: str
    origin: str  # folder URL at a pinned commit: each download is origin + name
    downloads: tuple[Download, ...]
    unpack: Unpack | None
    license: str  # LICENSE.md beside the files: where they come from, the terms, how to cite

    @property
    def files(self) -> tuple[str, ...]:
        """What the installed folder holds (besides LICENSE.md)."""
        if self.unpack is not None:
            return (self.unpack.name,)
        return tuple(d.name for d in self.downloads)


_MULTI30K_COMMIT = "a3d2e0d26b56f3846f66a952536ffed4e401d05a"
MULTI30K = Dataset(
    name="multi30k",
    origin=f"https://raw.githubusercontent.com/multi30k/dataset/{_MULTI30K_COMMIT}/data/task1/raw/",
    downloads=tuple(
        Download(*entry)
        for entry in (
            ("train.fr.gz", 604242, "622e75069e9f4c577425c4f277116ce66e63a2401c0a2312d90073cb12379a3c"),
            ("train.en.gz", 568929, "d79cfa999dd4c51d2cb42499b6796d5a882c3a8a961923c25a898c90f8bbd56f"),
            ("train.de.gz", 637044, "726e39b2fa9eb9ffb6dc763fb35a179f80fae06ffc5d28b6ace5faa883de28a6"),
            ("val.fr.gz", 23001, "ca3106f1a72390591d25f6c45cb4cd39dec4cd3f123e099748a3ce5256c160e9"),
            ("val.en.gz", 21650, "14f7d25ddd868909a9213e361768460edcacdd6ab9d1e77b92560dc10c10dc28"),
            ("val.de.gz", 24681, "f0cba2f995189cf5770f29a8a9a537a3ad3f51657ad873405082ff6863a5e75a"),
            ("test_2016_flickr.fr.gz", 22310, "6d326e188d259fb1d04ac19eae3af956559b3a0b93d7635e56c90987c40c8b90"),
            ("test_2016_flickr.en.gz", 21077, "611d361c6334bc7246101d48097c13cf5c4413c5befc793cc629934359d532d9"),
            ("test_2016_flickr.de.gz", 22890, "9204244e408ccb38d2a55cfcd344df15005fc42a07a6e55ca6c52b6ababb8cc8"),
            ("test_2017_flickr.fr.gz", 20434, "3ba671ceb2299f3304ffafefea7a833d08632fbaf0ba18546f8a2ec2391af496"),
            ("test_2017_flickr.en.gz", 19138, "76a444ee25172e72695cddb13ae4a3bda59430617be88e0bb46b60504f054074"),
            ("test_2017_flickr.de.gz", 21471, "a2c89666db00c495cd8513b9d708d5a3acc205d7de312ef2bf5fb7ebc1540aee"),
            ("test_2017_mscoco.fr.gz", 9751, "754f3072ba9f124569ba5258b32730fc1d214bbf8e0c6dfb2b74401676220db0"),
            ("test_2017_mscoco.en.gz", 8844, "aab300bfb4427697987e02cd0aacd44bfe8aa50456231b6474c08038bbed2b58"),
            ("test_2017_mscoco.de.gz", 10230, "799e4854c25d601cb6cb6be29eabe5667734c61ace2f495e03e429031a0bc338"),
            ("test_2018_flickr.fr.gz", 25321, "fb2b83fcceb937a4f7e3e93c1c51c22aba92f1e342391e6b5ba392b16a920501"),
            ("test_2018_flickr.en.gz", 23514, "ef4f4844037d4c5dea75c9a8ed5fd78905967a26f67c255e230cc9780032654d"),
            ("test_2018_flickr.de.gz", 26461, "ddd0130c7d97482dc5197a02141dae8dd79f20f03586c480d675c09a32daf608"),
        )
    ),
    unpack=None,
    license=f"""# Multi30k (task 1), raw text

Image captions in English, German and French; one sentence a line, gzip, UTF-8, untokenized;
line N of `SPLIT.fr.gz` translates line N of `SPLIT.en.gz`.

## Source

https://github.com/multi30k/dataset, commit {_MULTI30K_COMMIT}, `data/task1/raw/`,
fetched by `attnstep data get multi30k` and checked against pinned sha256 sums.

## Terms of use

From the dataset's README: "The Multi30K dataset is partially derived from the Flickr30K dataset.
[...] They are solely provided for researchers and educators who wish to use the dataset for
non-commercial research and/or educational purposes."

## Citation

English and German data: Desmond Elliott, Stella Frank, Khalil Sima'an and Lucia Specia. 2016.
Multi30K: Multilingual English-German Image Descriptions. Proceedings of the 5th Workshop on Vision
and Language, pages 70–74. https://doi.org/10.18653/v1/W16-3210

French data and the 2017 test sets: Desmond Elliott, Stella Frank, Loïc Barrault, Fethi Bougares
and Lucia Specia. 2017. Findings of the Second Shared Task on Multimodal Machine Translation and
Multilingual Image Description. Proceedings of the Second Conference on Machine Translation,
pages 215–233. http://www.aclweb.org/anthology/W17-4718
""",
)

_TATOEBA_COMMIT = "adddaf33ac35572bcfeb421efec29435e7ea9332"
TATOEBA = Dataset(
    name="tatoeba",
    origin=f"https://raw.githubusercontent.com/modelexlab/data/{_TATOEBA_COMMIT}/",
    downloads=(Download("fra-eng.zip", 3424571, "161c93f18da3a7e6df611ed961426613260de8af06ccf8c79c977afe5135ac44"),),
    unpack=Unpack(
        "fra-eng.zip",
        "fra-eng/fra.txt",
        "fra-eng.tsv.gz",
        "0bb85dbaa1c896844649094d7eaf2e34bee34e84fe362b26ce7e8f2e12aae104",
    ),
    license=f"""# Tatoeba French–English sentence pairs

167,130 everyday sentence pairs. `fra-eng.tsv.gz`: gzip, UTF-8, one pair a line, English first,
then a tab, then French (the release's `fra.txt`, unchanged). There is no official split.

## Source

The manythings.org "fra-eng" release of 2019-04-07 (from tatoeba.org's sentences_detailed.csv),
as redistributed in https://github.com/modelexlab/data, commit {_TATOEBA_COMMIT}, `fra-eng.zip`,
fetched by `attnstep data get tatoeba` and checked against pinned sha256 sums.

## License

Creative Commons Attribution 2.0 (https://creativecommons.org/licenses/by/2.0/), under the terms
of use of tatoeba.org (https://tatoeba.org/eng/terms_of_use).

## Attribution

www.manythings.org/anki and tatoeba.org. A model trained on this data must carry that attribution.
The sentences are written by volunteers and contain errors.
""",
)

DATASETS = {d.name: d for d in (MULTI30K, TATOEBA)}
LICENSE_FILE = "LICENSE.md"


def cache_dir() -> Path:
    """``$XDG_CACHE_HOME/attnstep/data``; the XDG spec ignores a relative XDG_CACHE_HOME, and so do we."""
    configured = os.environ.get("XDG_CACHE_HOME", "")
    base = Path(configured) if os.path.isabs(configured) else Path.home() / ".cache"
    return base / "attnstep" / "data"


def default_data_dir(name: str) -> Path:
    """Where ``attnstep data get NAME`` puts a corpus, and where commands look for it by default."""
    return cache_dir() / name


def check_splits(folder: Path, splits: Iterable[str], languages: Iterable[str]) -> None:
    """Refuse a data folder that lacks ``SPLIT.LANG[.gz]``, naming the command that fetches it."""
    wanted = [f"{split}.{lang}" for split in splits for lang in languages]
    missing = [name for name in wanted if not ((folder / f"{name}.gz").is_file() or (folder / name).is_file())]
    if not missing:
        return
    fetch = next(
        (f"`attnstep data get {d.name}`" for d in DATASETS.values() if default_data_dir(d.name) == folder), None
    )
    if not folder.is_dir():
        how = f"run {fetch}" if fetch else "run `attnstep data get multi30k`"
        raise AttnstepError(f"no data at {folder}: {how}, or point --data at a folder with {missing[0]}.gz")
    present = sorted(
        {p.name.split(".")[0] for p in folder.iterdir() if p.name.count(".") in (1, 2) and p.name != LICENSE_FILE}
    )
    raise AttnstepError(f"{folder} has no {missing[0]}(.gz); splits there: {', '.join(present) or 'none'}")


def locate(recorded: str, option: str) -> Path:
    """A corpus file a checkpoint recorded by path (its held-out recipe), found where it was, or in the
    data cache under the same name; if in neither, the error names the command that fetches it."""
    path = Path(recorded)
    if path.exists():
        return path
    for dataset in DATASETS.values():
        if path.name in dataset.files:
            cached = default_data_dir(dataset.name) / path.name
            if cached.is_file():
                return cached
            raise AttnstepError(f"{recorded} is missing: run `attnstep data get {dataset.name}`, or give {option} FILE")
    raise AttnstepError(f"{recorded} is missing: give {option} FILE")


# The command line imports this module for default_data_dir at every start, so the download
# machinery (urllib, zipfile, gzip) is imported only by the functions below that use it.


def get(name: str, *, mirror: str | None = None, say: Callable[[str], None] = print) -> Path:
    """Fetch dataset ``name`` into its cache folder (unless already there and intact); → the folder."""
    import shutil
    import tempfile

    if name not in DATASETS:
        raise AttnstepError(f"no dataset named {name!r}; attnstep can get {', '.join(DATASETS)}")
    dataset = DATASETS[name]
    destination = default_data_dir(name)
    if destination.exists():
        problem = verify(dataset, destination)
        if problem:
            raise AttnstepError(
                f"{destination} exists but {problem}; remove it and run `attnstep data get {name}` again"
            )
        say(f"{name} is already in {destination} (sha256 checked)")
        return destination
    destination.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{name}.", dir=destination.parent))
    try:
        base = mirror.rstrip("/") + "/" if mirror else dataset.origin
        for download in dataset.downloads:
            _download(base + download.name, staging / download.name, download)
            say(f"fetched {download.name} ({download.size:,} bytes, sha256 ok)")
        if dataset.unpack is not None:
            _unpack(staging, dataset.unpack)
        (staging / LICENSE_FILE).write_text(dataset.license, encoding="utf-8")
        staging.chmod(shared_mode(0o777))  # mkdtemp makes it owner-only; a data folder is meant to be shared
        os.replace(staging, destination)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    say(f"{name}: {len(dataset.files)} files in {destination}; license and citation in {LICENSE_FILE}")
    return destination


def _download(url: str, path: Path, download: Download) -> None:
    import hashlib
    import urllib.error
    import urllib.request

    digest = hashlib.sha256()
    size = 0
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT) as answer, open(path, "wb") as handle:
            while block := answer.read(1 << 16):
                size += len(block)
                if size > download.size:
                    raise AttnstepError(
                        f"{url} is larger than the {download.size:,} bytes expected; nothing was installed"
                    )
                digest.update(block)
                handle.write(block)
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", None) or getattr(exc, "strerror", None) or exc
        raise AttnstepError(f"cannot download {url}: {reason}") from None
    if digest.hexdigest() != download.sha256:
        raise AttnstepError(
            f"{url} has sha256 {digest.hexdigest()}, not the pinned {download.sha256}: "
            "the download is damaged or the origin changed; nothing was installed"
        )


def _unpack(folder: Path, unpack: Unpack) -> None:
    import gzip
    import hashlib
    import zipfile

    with zipfile.ZipFile(folder / unpack.archive) as archive:
        content = archive.read(unpack.member)
    if hashlib.sha256(content).hexdigest() != unpack.sha256:
        raise AttnstepError(
            f"{unpack.member} in {unpack.archive} does not have its pinned sha256; nothing was installed"
        )
    # mtime=0: the same content always gives the same bytes.
    with open(folder / unpack.name, "wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as zipped:
        zipped.write(content)
    (folder / unpack.archive).unlink()


def verify(dataset: Dataset, folder: Path) -> str | None:
    """What is wrong with an installed folder, or None if every file has its pinned sha256."""
    import gzip

    if dataset.unpack is not None:
        expected = {dataset.unpack.name: dataset.unpack.sha256}
    else:
        expected = {d.name: d.sha256 for d in dataset.downloads}
    for name, sha256 in expected.items():
        path = folder / name
        try:
            if dataset.unpack is not None:
                with gzip.open(path, "rb") as handle:
                    actual = _sha256(handle)
            else:
                with open(path, "rb") as handle:
                    actual = _sha256(handle)
        except (OSError, EOFError):
            return f"{name} is missing or unreadable"
        if actual != sha256:
            return f"{name} does not have its pinned sha256"
    return None


def _sha256(handle: BufferedIOBase) -> str:
    import hashlib

    digest = hashlib.sha256()
    while block := handle.read(1 << 20):
        digest.update(block)
    return digest.hexdigest()
