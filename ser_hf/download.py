"""Fetch the public corpora: resumable, checksum-verified downloads and safe archive extraction.

``ser-hf download NAME [--to DIR]``:

- **ravdess**: ``Audio_Speech_Actors_01-24.zip`` of Zenodo record 1188976 (Livingstone & Russo 2018,
  CC BY-NC-SA 4.0). The download URL and md5 come from the record's metadata
  (``https://zenodo.org/api/records/1188976``), and the file is checked against that md5. Extracted to
  ``DIR/ravdess/Actor_01 .. Actor_24``.
- **emovdb**: the openslr resource 115 archives ``<speaker>_<Emotion>.tar.gz`` of the English speakers,
  extracted side by side into ``DIR/emovdb/`` (the layout :mod:`ser_hf.corpora.emovdb` reads). openslr
  publishes no checksums we can read, so integrity is checked by the gzip CRC while extracting and by the
  builder's clip counts afterwards; archives the server does not have (HTTP 404) are listed, not fatal.
- **urdu**: the public GitHub archive of https://github.com/siddiquelatif/URDU-Dataset (Latif et al. 2018, research
  use only), extracted to ``DIR/urdu``. Its authors publish no checksum and none could be recorded when this was
  written (no network), so integrity is checked by the zip's CRC-32 of every member while extracting and by the
  builder's documented counts (400 clips, 100 per emotion, the clip count of each of the 29 speakers) afterwards.
- **anad**, **eyase**, **emovo**, **nemo**, **ased**, **turevdb**: no automatic download (yet): each corpus module's
  :attr:`ser_hf.corpora.CorpusInfo.manual_steps` say where to get it and the layout, and
  :func:`ser_hf.corpora.manual_instructions` prints them.

Which corpus downloads how is read from the corpus registry (:data:`ser_hf.corpora.REGISTRY`); this module holds
the download machinery.

Downloads resume after an interruption (HTTP ``Range`` from the ``.part`` file), show a progress bar, and a
file whose checksum does not match is moved aside to ``<name>.bad-md5`` and reported. Extraction refuses
archives with absolute paths, ``..`` components, links or devices (zip-slip / tar-slip) before writing
anything. Re-running is idempotent: verified archives and finished extractions are kept.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import stat
import tarfile
import urllib.error
import urllib.request
import zipfile
from pathlib import Path, PurePosixPath

from tqdm.auto import tqdm

logger = logging.getLogger(__name__)

ZENODO_API = os.environ.get("SER_HF_ZENODO_API", "https://zenodo.org/api/records")
OPENSLR_115 = os.environ.get("SER_HF_OPENSLR_115", "https://www.openslr.org/resources/115")
RAVDESS_RECORD, RAVDESS_FILE = "1188976", "Audio_Speech_Actors_01-24.zip"
EMOVDB_ARCHIVES = [
    f"{s}_{e}.tar.gz"
    for s in ("bea", "jenie", "josh", "sam")
    for e in ("Amused", "Angry", "Disgusted", "Neutral", "Sleepy")
]


URDU_URL = os.environ.get(
    "SER_HF_URDU_URL", "https://github.com/siddiquelatif/URDU-Dataset/archive/refs/heads/master.zip"
)
URDU_FILE = "URDU-Dataset-master.zip"
GITHUB = os.environ.get("SER_HF_GITHUB", "https://github.com")


class DownloadError(RuntimeError):
    """A download or verification failed; the message names the URL or file and what to do."""


class UnsafeArchiveError(DownloadError):
    """An archive member would land outside the target folder (or is a link / device); nothing was written."""


def md5sum(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.md5()
    with path.open("rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def fetch(url: str, dest: str | Path, md5: str | None = None, progress: bool = True, timeout: float = 60) -> Path:
    """Download ``url`` to ``dest``, resuming a ``dest.part`` left by an interrupted run.

    Args:
        md5: expected hex digest; ``None`` skips the check.

    Returns:
        ``dest`` (already present and verified: not downloaded again).

    Raises:
        DownloadError: HTTP or network error (the ``.part`` file is kept for the next run), or a checksum
            mismatch (the file is moved to ``<name>.bad-md5``).
    """
    dest = Path(dest)
    if dest.exists() and (md5 is None or md5sum(dest) == md5):
        logger.info("%s: present%s", dest, " and verified" if md5 else "")
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    have = part.stat().st_size if part.exists() else 0
    request = urllib.request.Request(url, headers={"Range": f"bytes={have}-"} if have else {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as resp:
            if have and resp.status != 206:  # the server ignored the range: start again
                have = 0
            total = resp.headers.get("Content-Length")
            total = int(total) + have if total is not None else None
            with (
                part.open("ab" if have else "wb") as f,
                tqdm(total=total, initial=have, unit="B", unit_scale=True, desc=dest.name, disable=not progress) as bar,
            ):
                while block := resp.read(1 << 20):
                    f.write(block)
                    bar.update(len(block))
            if total is not None and part.stat().st_size < total:
                raise DownloadError(
                    f"{url}: connection closed after {part.stat().st_size} of {total} bytes; run again to resume"
                )
    except urllib.error.HTTPError as err:
        if err.code == 416 and have:  # range not satisfiable: the partial file is already complete
            pass
        else:
            raise DownloadError(f"{url}: HTTP {err.code} {err.reason}") from None
    except (urllib.error.URLError, OSError) as err:
        raise DownloadError(
            f"{url}: download interrupted ({err}); {part} keeps {part.stat().st_size if part.exists() else 0} "
            "bytes, run again to resume"
        ) from None
    if md5 is not None:
        got = md5sum(part)
        if got != md5:
            bad = dest.with_name(dest.name + ".bad-md5")
            part.replace(bad)
            raise DownloadError(f"{url}: md5 {got} does not match the expected {md5}; the file was kept aside as {bad}")
    part.replace(dest)
    return dest


def _check_member(name: str, target: Path, archive: Path) -> Path:
    p = PurePosixPath(name.replace("\\", "/"))
    if p.is_absolute() or name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":"):
        raise UnsafeArchiveError(f"{archive}: member {name!r} has an absolute path; nothing was extracted")
    if ".." in p.parts:
        raise UnsafeArchiveError(
            f"{archive}: member {name!r} climbs out of the target with '..'; nothing was extracted"
        )
    out = (target / Path(*p.parts)).resolve() if p.parts else target.resolve()
    if target.resolve() not in (out, *out.parents):
        raise UnsafeArchiveError(f"{archive}: member {name!r} would be written outside {target}; nothing was extracted")
    return out


MAX_EXTRACTED_BYTES = 50 * 2**30
"""Largest total an archive may expand to (50 GiB; the biggest corpus archive here, RAVDESS speech, is 0.2 GB)."""
MAX_EXPANSION_RATIO = 100.0
"""Largest ratio of extracted bytes to archive bytes (audio barely compresses; a zip bomb expands 1000x and more)."""


def _check_size(archive: Path, total: int, max_bytes: int, max_ratio: float) -> None:
    size = max(archive.stat().st_size, 1)
    if total > max_bytes or total / size > max_ratio:
        raise UnsafeArchiveError(
            f"{archive}: its members would expand to {total:,} bytes from {size:,} ({total / size:.0f}x); the limits "
            f"are {max_bytes:,} bytes and {max_ratio:.0f}x (a decompression bomb?); nothing was extracted"
        )


def safe_extract(
    archive: str | Path,
    target: str | Path,
    max_bytes: int = MAX_EXTRACTED_BYTES,
    max_ratio: float = MAX_EXPANSION_RATIO,
) -> list[str]:
    """Extract a ``.zip`` or ``.tar(.gz)`` into ``target`` after checking every member.

    Refused (:class:`UnsafeArchiveError`, before anything is written): absolute paths, ``..`` components,
    symbolic or hard links, device files and FIFOs, and archives whose members' declared sizes add up to more than
    ``max_bytes`` or to more than ``max_ratio`` times the archive's size (zipfile and tarfile never write more
    than a member declares). A finished extraction is marked in ``target`` and not repeated.

    Returns:
        The member names extracted (empty when the marker says it was done before).

    Raises:
        UnsafeArchiveError: see above. DownloadError: a corrupt or truncated archive (the partial
            extraction stays in ``target`` for inspection; the marker is not written).
    """
    archive, target = Path(archive), Path(target)
    marker = target / f".ser_hf_extracted_{archive.name}"
    if marker.exists():
        return []
    if not archive.is_file():
        raise FileNotFoundError(f"{archive}: no such archive to extract")
    try:
        if zipfile.is_zipfile(archive):
            with zipfile.ZipFile(archive) as z:
                infos = z.infolist()
                for info in infos:
                    _check_member(info.filename, target, archive)
                    if stat.S_ISLNK(info.external_attr >> 16):
                        raise UnsafeArchiveError(
                            f"{archive}: member {info.filename!r} is a link; nothing was extracted"
                        )
                _check_size(archive, sum(i.file_size for i in infos), max_bytes, max_ratio)
                target.mkdir(parents=True, exist_ok=True)  # only once every member is known safe
                z.extractall(target)
                names = [i.filename for i in infos]
        else:
            with tarfile.open(archive) as t:
                members = t.getmembers()
                for m in members:
                    _check_member(m.name, target, archive)
                    if m.issym() or m.islnk():
                        raise UnsafeArchiveError(
                            f"{archive}: member {m.name!r} is a link to {m.linkname!r}; nothing was extracted"
                        )
                    if not (m.isfile() or m.isdir()):
                        raise UnsafeArchiveError(
                            f"{archive}: member {m.name!r} is a device or FIFO; nothing was extracted"
                        )
                _check_size(archive, sum(m.size for m in members if m.isfile()), max_bytes, max_ratio)
                target.mkdir(parents=True, exist_ok=True)  # only once every member is known safe
                if hasattr(tarfile, "data_filter"):  # second guard: Python's own tar-slip filter (3.11.4+)
                    t.extractall(target, filter="data")
                else:
                    t.extractall(target)
                names = [m.name for m in members]
    except (zipfile.BadZipFile, tarfile.TarError, EOFError, OSError) as err:
        if isinstance(err, UnsafeArchiveError):
            raise
        raise DownloadError(f"{archive}: corrupt or truncated archive ({err}); delete it and download again") from None
    target.mkdir(parents=True, exist_ok=True)
    marker.write_text(json.dumps({"archive": archive.name, "members": len(names)}))
    return names


def zenodo_file(record: str, key: str, api: str | None = None, timeout: float = 60) -> tuple[str, str]:
    """``(download URL, md5)`` of file ``key`` in Zenodo record ``record``, from the record's metadata.

    Raises:
        DownloadError: the metadata cannot be fetched, or the record has no such file.
    """
    url = f"{api or ZENODO_API}/{record}"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            meta = json.load(resp)
    except (urllib.error.URLError, OSError, json.JSONDecodeError) as err:
        raise DownloadError(f"{url}: cannot read the Zenodo record ({err})") from None
    for f in meta.get("files", []):
        if f.get("key") == key:
            algo, _, digest = str(f.get("checksum", "")).partition(":")
            if algo != "md5" or not digest:
                raise DownloadError(f"{url}: file {key} has no md5 checksum in the record")
            return f["links"]["self"], digest
    raise DownloadError(f"{url}: record has no file {key!r}")


def download_ravdess(to: str | Path, progress: bool = True) -> tuple[Path, list[str]]:
    """Download, verify and extract RAVDESS speech; returns the folder holding ``Actor_01 .. Actor_24`` and ``[]``
    (nothing missing)."""
    to = Path(to)
    url, md5 = zenodo_file(RAVDESS_RECORD, RAVDESS_FILE)
    archive = fetch(url, to / RAVDESS_FILE, md5, progress)
    safe_extract(archive, to / "ravdess")
    return to / "ravdess", []


def download_emovdb(to: str | Path, progress: bool = True, archives: list[str] | None = None) -> tuple[Path, list[str]]:
    """Download and extract the EmoV-DB English archives; returns the corpus folder and the archives the
    server did not have (HTTP 404)."""
    to = Path(to)
    missing = []
    for name in archives or EMOVDB_ARCHIVES:
        try:
            archive = fetch(f"{OPENSLR_115}/{name}", to / "archives" / name, None, progress)
        except DownloadError as err:
            if "HTTP 404" in str(err):
                missing.append(name)
                continue
            raise
        safe_extract(archive, to / "emovdb")
    return to / "emovdb", missing


def check_zip(archive: Path) -> None:
    """Read every member of a zip archive against its CRC-32 (archives published without a checksum).

    Raises:
        DownloadError: the file is not a readable zip, or a member fails its CRC-32 (delete the archive and
            download again).
    """
    try:
        with zipfile.ZipFile(archive) as z:
            bad = z.testzip()
    except (zipfile.BadZipFile, OSError) as err:
        raise DownloadError(f"{archive}: not a readable zip archive ({err}); delete it and download again") from None
    if bad is not None:
        raise DownloadError(f"{archive}: member {bad!r} fails its CRC-32 check; delete the archive and download again")


def download_urdu(to: str | Path, progress: bool = True) -> tuple[Path, list[str]]:
    """Download and extract URDU-Dataset; returns the extracted folder (the builder finds ``Angry/`` ... ``Sad/``
    inside it) and ``[]`` (nothing missing). Integrity: the zip's CRC-32 per member (:func:`check_zip`), then the
    builder's counts when it is loaded."""
    to = Path(to)
    archive = fetch(URDU_URL, to / URDU_FILE, None, progress)
    check_zip(archive)
    safe_extract(archive, to / "urdu")
    return to / "urdu", []


def download_github(repo: str, commit: str, name: str, subdir: str, to: str | Path, progress: bool = True):
    """Download a corpus published as a GitHub repository, pinned to one commit: the archive
    ``https://github.com/<repo>/archive/<commit>.zip`` (resumable), every member checked against its CRC-32
    (:func:`check_zip`; GitHub publishes no checksum), then safely extracted into ``to/<name>``. The builder checks
    the documented clip counts when the corpus is loaded.

    Args:
        repo: ``owner/name`` on GitHub.
        commit: the full commit the corpus module pins (its counts were checked at that commit).
        name: the corpus's registry name (the archive and folder names).
        subdir: the corpus folder inside the repository (``""``: its root).

    Returns:
        ``(corpus folder, [])``.

    Raises:
        DownloadError: download, CRC or archive layout failure (named, with what to do).
    """
    to = Path(to)
    archive = fetch(f"{GITHUB}/{repo}/archive/{commit}.zip", to / f"{name}-{commit[:12]}.zip", None, progress)
    check_zip(archive)
    safe_extract(archive, to / name)
    folder = to / name / f"{repo.split('/')[1]}-{commit}" / subdir
    if not folder.is_dir():
        raise DownloadError(f"{archive}: the archive has no folder {folder.relative_to(to / name)}; delete it and "
                            "download again")  # fmt: skip
    return folder, []


__all__ = [
    "DownloadError",
    "UnsafeArchiveError",
    "check_zip",
    "download_emovdb",
    "download_github",
    "download_ravdess",
    "download_urdu",
    "fetch",
    "safe_extract",
    "zenodo_file",
]


COMPLETE_MARKER = ".ser_hf_complete"


def corpora_cache(cache_dir: str | Path | None = None) -> Path:
    """Where corpora fetched on first use live: ``CACHE/ser_hf_corpora`` for a given datasets ``cache_dir``, else
    ``$SER_HF_CORPORA`` or the Hugging Face datasets cache (``~/.cache/huggingface/datasets/ser_hf_corpora``)."""
    if cache_dir is not None:
        return Path(cache_dir) / "ser_hf_corpora"
    if os.environ.get("SER_HF_CORPORA"):
        return Path(os.environ["SER_HF_CORPORA"])
    import datasets

    return Path(datasets.config.HF_DATASETS_CACHE) / "ser_hf_corpora"
