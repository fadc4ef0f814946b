"""A Python package's documentation from its PyPI source distribution: `pypi:NAME[==VERSION]`.

The sdist is found through the PyPI JSON API, checked against its published sha256 and
cached under `<RAGEVAL_HOME>/cache/pypi/<name>/<version>/` with that sha256 beside it (checked
again each time the copy is reused; a copy that fails is removed), so rebuilding a pinned package
needs no network (an unpinned one falls back to the newest cached copy when PyPI is out of
reach). From the archive we read, in memory and never extracting: the README / long
description in PKG-INFO, the docs tree (.rst, .md, .txt) and the docstrings of modules,
classes and functions, parsed with `ast`. Package code is never imported or executed.

Documents are named `<name>-<version>/<path in the sdist>` under the source `pypi:<name>`,
so a new version replaces the old one's chunks; section paths start with the package's
display name, which puts it in every chunk for retrieval.
"""
from __future__ import annotations

import email.parser
import hashlib
import json
import re
import sys
import tarfile
import textwrap
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from core.config import load_settings
from core.errors import SourceError
from core.models import Document, Section, Skipped
from core.sources import archive, docstrings
from core.sources.files import MAX_BYTES, UNREADABLE, document, read_capped, reason
from core.sources.text import decode, to_sections

PREFIX = "pypi:"
API = "https://pypi.org/pypi"
TIMEOUT_S = 30
MAX_SDIST_BYTES = 100_000_000
_SPEC = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:==\s*([A-Za-z0-9._+!-]+))?$")
_SAFE_VERSION = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_+!-]*(\.[A-Za-z0-9_+!-]+)*$")
_DOC_DIRS = {"docs", "doc", "documentation"}
_SKIP_DIRS = {"tests", "test", "testing", "__pycache__", "_build", "node_modules", "venv", ".tox"}
_SKIP_PY = {"setup.py", "conftest.py", "noxfile.py", "fabfile.py"}


def _http_get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=TIMEOUT_S) as r:  # noqa: S310 (https URLs we build)
        return r.read(MAX_SDIST_BYTES + 1)


# The one place that touches the network; tests (or an air-gapped mirror) replace it.
# It returns the bytes at a URL and raises urllib.error.HTTPError (404 = not found) or OSError.
fetch: Callable[[str], bytes] = _http_get


def claims(spec: str) -> bool:
    return spec.startswith(PREFIX)


def read(spec: str) -> Iterator[Document | Skipped]:
    """Read through the module's `fetch`, caching under the settings' home."""
    return documents(spec, load_settings().cache_dir / "pypi", fetch)


@dataclass(frozen=True)
class Sdist:
    """A downloaded source distribution in the cache."""

    name: str  # canonical, e.g. flask-login
    version: str
    path: Path


def documents(spec: str, cache: Path, get: Callable[[str], bytes]) -> Iterator[Document | Skipped]:
    """The documents of `pypi:NAME[==VERSION]`, downloading the sdist into `cache` if needed."""
    name, version = parse(spec)
    sdist = locate(spec, name, version, cache, get)
    return read_sdist(sdist.path, f"{PREFIX}{sdist.name}", f"{sdist.name}-{sdist.version}", spec)


def parse(spec: str) -> tuple[str, str | None]:
    m = _SPEC.match(spec[len(PREFIX):].strip())
    if not m:
        raise SourceError(f"{spec}: not a package spec; write pypi:NAME or pypi:NAME==VERSION")
    return m.group(1), m.group(2)


def locate(spec: str, name: str, version: str | None, cache: Path, get) -> Sdist:
    """The cached sdist for the spec, downloading it (and checking its sha256) when missing."""
    canon = canonicalize_name(name)
    if version and (hit := _cached(cache / canon, version)):
        return hit
    # The project's JSON lists every release's files; one request serves pinned and latest
    # alike (some mirrors do not serve the per-version endpoint).
    url = f"{API}/{canon}/json"
    try:
        meta = json.loads(get(url))
    except urllib.error.HTTPError as e:
        if e.code == 404:
            raise SourceError(f"{spec}: PyPI has no package named '{name}'") from None
        raise SourceError(f"{spec}: PyPI answered HTTP {e.code} for {url}") from None
    except (OSError, ValueError) as e:
        if not version and (hit := _cached(cache / canon)):
            return hit  # offline: the newest copy we have
        raise SourceError(f"{spec}: PyPI could not be reached ({e}) and no copy is cached (with a sha256 "
                          f"that checks out) under {cache / canon}") from None
    try:
        if version:
            files, version = _release(meta, version, spec, name)
        else:
            files, version = meta.get("urls", []), meta["info"]["version"]
    except (KeyError, TypeError, AttributeError):
        raise SourceError(f"{spec}: {url} did not answer like PyPI's JSON API") from None
    if not _SAFE_VERSION.match(version):  # it names a cache folder: nothing like '../'
        raise SourceError(f"{spec}: PyPI gave the unusable version {version!r}")
    if hit := _cached(cache / canon, version):
        return hit
    sdists = [u for u in files if u.get("packagetype") == "sdist" and "url" in u
              and str(u.get("filename", "")).endswith((".tar.gz", ".tgz", ".tar.bz2", ".zip"))]
    sdists.sort(key=lambda u: not u["filename"].endswith((".tar.gz", ".tgz")))  # prefer tarballs
    if not sdists:
        raise SourceError(f"{spec}: {name} {version} has no source distribution on PyPI (only wheels), "
                          "so there are no docs or sources to read")
    chosen = sdists[0]
    if chosen.get("size", 0) > MAX_SDIST_BYTES:
        raise SourceError(f"{spec}: the sdist is {chosen['size'] // 1_000_000} MB, "
                          f"more than {MAX_SDIST_BYTES // 1_000_000} MB")
    try:
        data = get(urllib.parse.urljoin(url, chosen["url"]))  # mirrors may give relative URLs
    except (OSError, ValueError) as e:
        raise SourceError(f"{spec}: downloading {chosen['filename']} failed ({e})") from None
    if len(data) > MAX_SDIST_BYTES:
        raise SourceError(f"{spec}: the sdist is more than {MAX_SDIST_BYTES // 1_000_000} MB")
    expected = chosen.get("digests", {}).get("sha256")
    if expected and hashlib.sha256(data).hexdigest() != expected:
        raise SourceError(f"{spec}: {chosen['filename']} does not match the sha256 PyPI publishes; not used")
    target = cache / canon / version / Path(chosen["filename"]).name
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(target.name + ".part")
    tmp.write_bytes(data)
    _digest_file(target).write_text(expected or hashlib.sha256(data).hexdigest(), encoding="ascii")
    tmp.replace(target)  # a half-written file never looks cached
    return Sdist(canon, version, target)


def _digest_file(path: Path) -> Path:
    """Where the sha256 of a cached sdist is kept, as checked when it was downloaded."""
    return path.with_name(path.name + ".sha256")


def _verified(path: Path) -> bool:
    """Whether a cached sdist still has the sha256 it was downloaded with. A copy that does not
    (changed on disk) is removed; one without a record is not used. Either is downloaded and
    checked again."""
    record = _digest_file(path)
    try:
        wanted = record.read_text(encoding="ascii").strip()
        ok = hashlib.sha256(path.read_bytes()).hexdigest() == wanted
    except OSError:
        return False
    if not ok:
        path.unlink(missing_ok=True)
        record.unlink(missing_ok=True)
    return ok


def _release(meta: dict, version: str, spec: str, name: str) -> tuple[list[dict], str]:
    """The files of one release, matching the version however it is spelled (3.1 == 3.1.0)."""
    try:
        wanted = Version(version)
    except InvalidVersion:
        raise SourceError(f"{spec}: '{version}' is not a version number") from None
    for v, files in meta.get("releases", {}).items():
        try:
            if Version(v) == wanted:
                return files, v
        except InvalidVersion:
            continue
    raise SourceError(f"{spec}: PyPI has no version {version} of '{name}' "
                      f"(the latest is {meta['info']['version']})")


def _cached(folder: Path, version: str | None = None) -> Sdist | None:
    """The cached sdist of that version (any spelling: 3.1 == 3.1.0), or the newest one."""
    if not folder.is_dir():
        return None
    found = []
    for d in folder.iterdir():
        files = [f for f in d.iterdir() if not f.name.endswith((".part", ".sha256"))] if d.is_dir() else []
        if files:
            try:
                found.append((Version(d.name), d.name, files[0]))
            except InvalidVersion:
                continue
    if version:
        try:
            wanted = Version(version)
        except InvalidVersion:
            return None
        found = [f for f in found if f[0] == wanted]
    for _, v, path in sorted(found, reverse=True):
        if _verified(path):
            return Sdist(folder.name, v, path)
    return None


def members(path: Path, spec: str) -> list[tuple[str, Callable[[], bytes]]]:
    """The regular files of a .tar.gz / .zip sdist as (name, reader), refusing the whole
    archive when an entry is a link or device, escapes the root, or the caps are exceeded."""
    if zipfile.is_zipfile(path):
        zf = zipfile.ZipFile(path)
        infos = [i for i in zf.infolist() if not i.is_dir()]
        archive.check(spec, [(i.filename, i.file_size) for i in infos])
        return [(i.filename, lambda i=i: archive.read_member(zf, i)) for i in infos]
    try:
        tf = tarfile.open(path, "r:*")
    except (tarfile.TarError, OSError) as e:
        raise SourceError(f"{spec}: {path.name} is not a readable tar or zip archive ({e})") from None
    entries = []
    for m in tf:  # iterate rather than getmembers(): stop at the cap, not after reading it all
        if len(entries) >= archive.MAX_MEMBERS:
            raise SourceError(f"{spec}: more than {archive.MAX_MEMBERS} entries in {path.name}")
        if m.isdir():
            continue
        if not m.isfile():  # symlinks, hard links, devices: nothing a docs reader needs
            raise SourceError(f"{spec}: entry '{m.name}' in {path.name} is a link or special file; "
                              "the archive was refused and nothing of it was ingested")
        entries.append(m)
    archive.check(spec, [(m.name, m.size) for m in entries])
    return [(m.name, lambda m=m: _tar_member(tf, m)) for m in entries]


def _tar_member(tf: tarfile.TarFile, m: tarfile.TarInfo) -> bytes:
    """A tar member's bytes, refused by its header's size before anything is inflated."""
    if m.size > MAX_BYTES:
        raise ValueError(f"larger than {MAX_BYTES // 1_000_000} MB uncompressed; not read")
    return read_capped(tf.extractfile(m))


def read_sdist(path: Path, source: str, label: str, spec: str | None = None) -> Iterator[Document | Skipped]:
    """The documents of a source distribution; `label` (name-version) prefixes their names.
    The archive is checked whole here, so a refused one raises before anything is read."""
    return _documents(members(path, spec or source), source, label)


def _documents(entries, source: str, label: str) -> Iterator[Document | Skipped]:
    names = [n.replace("\\", "/") for n, _ in entries]
    top = {PurePosixPath(n).parts[0] for n in names}
    strip = len(top) == 1 and all(len(PurePosixPath(n).parts) > 1 for n in names)
    files = {}
    for (raw, reader), n in zip(entries, names):
        rel = "/".join(PurePosixPath(n).parts[1:]) if strip else n
        files[rel] = reader
    display = label
    readme_done = False
    if "PKG-INFO" in files:
        try:
            doc, display = _pkg_info(source, label, files["PKG-INFO"]())
        except UNREADABLE as e:
            doc = None
            yield Skipped(source, f"{label}/PKG-INFO", reason(e))
        if doc is not None:
            readme_done = True
            yield doc
    for rel in sorted(files):
        kind = _kind(rel, readme_done)
        if kind is None:
            continue
        name = f"{label}/{rel}"
        try:
            data = files[rel]()
            if kind == "py":
                secs = docstrings.sections(decode(data, rel), docstrings.module_name(rel), (display,))
                doc = Document(source, name, secs) if secs else None
            else:
                doc = document(source, name, data)
                doc = doc and _prefixed(doc, display)
        except SyntaxError as e:
            yield Skipped(source, name, f"does not parse as Python {sys.version_info.major}."
                                        f"{sys.version_info.minor} (line {e.lineno}): {e.msg}")
            continue
        except UNREADABLE as e:  # a damaged member, nesting that overflows the parser, memory
            yield Skipped(source, name, reason(e))
            continue
        if doc is not None:
            yield doc


def _kind(rel: str, readme_done: bool) -> str | None:
    """'py', 'doc' or None (not read) for a path inside the sdist."""
    p = PurePosixPath(rel)
    dirs = p.parts[:-1]
    if any(d in _SKIP_DIRS or d.startswith(".") or d.endswith(".egg-info") for d in dirs):
        return None
    suffix = p.suffix.lower()
    in_docs = bool(dirs) and dirs[0].lower() in _DOC_DIRS
    if suffix == ".py":
        if in_docs or p.name in _SKIP_PY or p.name.startswith("test_") or p.name.endswith("_test.py"):
            return None
        return "py"
    if suffix in (".rst", ".md", ".txt"):
        if in_docs:
            return None if p.name.lower().startswith(("requirements", "license")) else "doc"
        if not dirs and p.stem.upper() == "README" and not readme_done:
            return "doc"
    return None


def _pkg_info(source: str, label: str, data: bytes) -> tuple[Document | None, str]:
    """The long description of PKG-INFO as a document, and the package's display name."""
    msg = email.parser.BytesParser().parsebytes(data)
    display = (msg.get("Name") or label).strip()
    body = msg.get_payload() if isinstance(msg.get_payload(), str) else ""
    if not body.strip() and msg.get("Description"):
        # metadata 1.x folds the description into a header, continuation lines indented by 8
        first, _, rest = str(msg["Description"]).partition("\n")
        body = first + "\n" + textwrap.dedent(rest.replace("\n       |", "\n"))
    ctype = (msg.get("Description-Content-Type") or "").lower()
    fmt = "markdown" if "markdown" in ctype else "text" if "plain" in ctype else "rst"
    sections = list(to_sections(body, fmt, title=display)) if body.strip() and body.strip() != "UNKNOWN" else []
    summary = (msg.get("Summary") or "").strip()
    if summary and summary != "UNKNOWN":
        sections.insert(0, Section((display,), f"{display} {msg.get('Version', '')}: {summary}"))
    if not sections:
        return None, display
    return _prefixed(Document(source, f"{label}/PKG-INFO", tuple(sections)), display), display


def _prefixed(doc: Document, display: str) -> Document:
    """Section paths that start with the package's name, unless they already do."""
    key = canonicalize_name(display)
    secs = tuple(s if s.path and canonicalize_name(s.path[0]) == key else Section((display,) + s.path, s.text)
                 for s in doc.sections)
    return Document(doc.source, doc.name, secs)
