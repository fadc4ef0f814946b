"""A .zip archive, read in memory; an entry that would escape the extraction root
refuses the whole archive, since such an archive is hostile or broken. Members are
streamed under a size and compression-ratio cap (`files.read_capped`); a damaged or
oversized member is skipped with its reason and the rest is read."""
from __future__ import annotations

import zipfile
from collections.abc import Iterator
from pathlib import Path, PurePosixPath

from core.errors import SourceError
from core.models import Document, Skipped
from core.sources.files import member, read_capped

MAX_MEMBERS = 20_000
MAX_TOTAL_BYTES = 500_000_000


def claims(spec: str) -> bool:
    return Path(spec).is_file() and Path(spec).suffix.lower() == ".zip"


def safe_member_name(name: str) -> bool:
    """False for absolute paths, drive letters and any '..' step: those escape the root."""
    name = name.replace("\\", "/")
    p = PurePosixPath(name)
    return not (p.is_absolute() or ".." in p.parts or (p.parts and ":" in p.parts[0]))


def read(spec: str) -> Iterator[Document | Skipped]:
    path = Path(spec)
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as e:
        raise SourceError(f"{spec}: not a readable zip archive ({e})") from None
    with zf:
        infos = [i for i in zf.infolist() if not i.is_dir()]
        check(spec, [(i.filename, i.file_size) for i in infos])
        source = str(path.resolve())
        for info in infos:
            if any(part.startswith(".") or part == "__MACOSX" for part in PurePosixPath(info.filename).parts):
                continue
            item = member(source, info.filename, lambda info=info: read_member(zf, info))
            if item is not None:
                yield item


def read_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo) -> bytes:
    """One member's bytes, streamed: size and compression ratio are checked as it inflates,
    whatever its header claims. A damaged member raises BadZipFile (a CRC that does not match)."""
    try:
        f = zf.open(info)
    except (RuntimeError, NotImplementedError) as e:  # zipfile's words for encrypted / unknown method
        raise ValueError(f"not readable: {e}") from None
    with f:
        return read_capped(f, compressed=info.compress_size)


def check(spec: str, entries: list[tuple[str, int]]) -> None:
    """Refuse an archive whose entries escape its root or exceed the caps."""
    for name, _ in entries:
        if not safe_member_name(name):
            raise SourceError(f"{spec}: entry '{name}' would be written outside the archive's folder; "
                              "the archive was refused and nothing of it was ingested")
    if len(entries) > MAX_MEMBERS:
        raise SourceError(f"{spec}: {len(entries)} entries, more than the {MAX_MEMBERS} allowed")
    total = sum(size for _, size in entries)
    if total > MAX_TOTAL_BYTES:
        raise SourceError(f"{spec}: {total // 1_000_000} MB uncompressed, more than {MAX_TOTAL_BYTES // 1_000_000} MB")
