"""pypi:, stdlib: and PDF sources, on sdists and files the tests build (no network)."""
import hashlib
import io
import json
import sys
import tarfile
import textwrap
import urllib.error
import zipfile

import pytest

from core import sources
from core.errors import SourceError
from core.ingest import ingest
from core.models import Document, Skipped
from core.sources import pypi
from core.sources.files import document

PKG_INFO = """\
Metadata-Version: 2.1
Name: Flask-Widget
Version: 1.2.0
Summary: Widgets for Flask apps.
Description-Content-Type: text/markdown

# Flask-Widget

Adds widgets to Flask.

## Installation

```bash
pip install flask-widget
```
"""
INDEX_RST = """\
Flask-Widget
============

.. toctree::
   :maxdepth: 2

   api

Configuration
-------------

Set :data:`WIDGET_COLOR` to choose a colour; see :ref:`the API <api>`.

.. code-block:: python

   app.config["WIDGET_COLOR"] = "blue"
"""
INIT_PY = '''\
"""Flask-Widget: widgets for Flask."""
from .core import Widget


def make_widget(name: str, *, size: int = 3) -> "Widget":
    """Create a widget called ``name``.

    :param name: what the :class:`~flask_widget.Widget` shows.
    """
    return Widget(name)


def _private():
    """Not documentation."""
'''
BOOM_PY = '''\
"""A module whose import would fail."""
raise RuntimeError("importing flask_widget.boom is forbidden")


class Exploder:
    """Explodes on demand."""

    def detonate(self, delay=0):
        """Detonate after ``delay`` seconds."""
'''


def tar_bytes(files: dict[str, str | bytes], links: dict[str, str] | None = None) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        for name, text in files.items():
            data = text.encode() if isinstance(text, str) else text
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
        for name, target in (links or {}).items():
            info = tarfile.TarInfo(name)
            info.type, info.linkname = tarfile.SYMTYPE, target
            tf.addfile(info)
    return buf.getvalue()


def widget_sdist(**extra) -> bytes:
    top = "flask_widget-1.2.0/"
    files = {"PKG-INFO": PKG_INFO, "docs/index.rst": INDEX_RST, "docs/requirements.txt": "sphinx\n",
             "docs/conf.py": '"""Sphinx configuration."""\n', "setup.py": '"""Setup."""\n',
             "src/flask_widget/__init__.py": INIT_PY, "src/flask_widget/boom.py": BOOM_PY,
             "tests/test_widget.py": '"""Tests."""\ndef test_x():\n    """A test."""\n',
             "README.md": "# Same as PKG-INFO\n"}
    return tar_bytes({top + k: v for k, v in {**files, **extra}.items()})


class FakePyPI:
    """PyPI's JSON API and file host for the sdists a test gives it; counts requests."""

    def __init__(self, sdists: dict[tuple[str, str], bytes]):
        self.sdists, self.calls = sdists, []

    def __call__(self, url: str) -> bytes:
        self.calls.append(url)
        if url.startswith("https://files.example/"):
            return self.sdists[tuple(url.rsplit("/", 2)[1:])]
        name = url.split("/pypi/")[1].split("/")[0]
        releases = {v: [{"packagetype": "sdist", "filename": f"{name}-{v}.tar.gz", "size": len(data),
                         "url": f"https://files.example/{name}/{v}",
                         "digests": {"sha256": hashlib.sha256(data).hexdigest()}}]
                    for (n, v), data in self.sdists.items() if n == name}
        if not releases:
            raise urllib.error.HTTPError(url, 404, "Not Found", {}, None)
        latest = max(releases)
        return json.dumps({"info": {"version": latest}, "urls": releases[latest], "releases": releases}).encode()


def offline(url):
    raise urllib.error.URLError("network is unreachable")


def test_sdist_docs_readme_and_docstrings_are_read_without_importing(tmp_path):
    fake = FakePyPI({("flask-widget", "1.2.0"): widget_sdist()})
    items = list(pypi.documents("pypi:Flask-Widget==1.2.0", tmp_path / "cache", fake))
    assert not [i for i in items if isinstance(i, Skipped)]
    docs = {d.name: d for d in items}
    assert sorted(docs) == ["flask-widget-1.2.0/PKG-INFO", "flask-widget-1.2.0/docs/index.rst",
                            "flask-widget-1.2.0/src/flask_widget/__init__.py",
                            "flask-widget-1.2.0/src/flask_widget/boom.py"]  # no tests, conf.py, setup.py
    assert {d.source for d in items} == {"pypi:flask-widget"}

    readme = docs["flask-widget-1.2.0/PKG-INFO"].sections
    assert readme[0].text == "Flask-Widget 1.2.0: Widgets for Flask apps."
    assert [s.path for s in readme] == [("Flask-Widget",), ("Flask-Widget",), ("Flask-Widget", "Installation")]
    assert "pip install flask-widget" in readme[2].text

    index = docs["flask-widget-1.2.0/docs/index.rst"].sections
    assert [s.path for s in index] == [("Flask-Widget", "Configuration")]
    assert index[0].text.startswith("Set WIDGET_COLOR to choose a colour; see the API.")
    assert 'app.config["WIDGET_COLOR"] = "blue"' in index[0].text and "toctree" not in index[0].text

    init = docs["flask-widget-1.2.0/src/flask_widget/__init__.py"].sections
    assert [(s.path, s.text) for s in init] == [
        (("Flask-Widget", "flask_widget"), "Flask-Widget: widgets for Flask."),
        (("Flask-Widget", "flask_widget", "make_widget"),
         "def flask_widget.make_widget(name: str, *, size: int=3)\n\nCreate a widget called name.\n\n"
         "Parameter name: what the flask_widget.Widget shows.")]
    boom = docs["flask-widget-1.2.0/src/flask_widget/boom.py"].sections
    assert [s.path[-1] for s in boom] == ["flask_widget.boom", "Exploder", "detonate"]
    assert boom[2].text.startswith("def flask_widget.boom.Exploder.detonate(self, delay=0)")
    assert "flask_widget" not in sys.modules and "flask_widget.boom" not in sys.modules


def test_sdist_is_cached_so_a_pinned_rebuild_is_offline(tmp_path):
    fake = FakePyPI({("flask-widget", "1.2.0"): widget_sdist()})
    first = [d.name for d in pypi.documents("pypi:flask-widget==1.2.0", tmp_path, fake)]
    assert len(fake.calls) == 2  # the project's JSON, then the sdist
    assert (tmp_path / "flask-widget" / "1.2.0" / "flask-widget-1.2.0.tar.gz").is_file()
    assert [d.name for d in pypi.documents("pypi:flask-widget==1.2", tmp_path, offline)] == first
    assert [d.name for d in pypi.documents("pypi:flask-widget", tmp_path, offline)] == first  # newest cached
    with pytest.raises(SourceError, match="could not be reached .* no copy is cached"):
        pypi.documents("pypi:other", tmp_path, offline)


def test_missing_package_version_sdist_and_a_bad_checksum_are_clear_errors(tmp_path):
    fake = FakePyPI({("flask-widget", "1.2.0"): widget_sdist()})
    with pytest.raises(SourceError, match="pypi:nope: PyPI has no package named 'nope'"):
        pypi.documents("pypi:nope", tmp_path, fake)
    with pytest.raises(SourceError, match=r"no version 9.9 of 'flask-widget' \(the latest is 1.2.0\)"):
        pypi.documents("pypi:flask-widget==9.9", tmp_path, fake)
    with pytest.raises(SourceError, match="not a package spec"):
        pypi.documents("pypi:../etc", tmp_path, fake)

    def wheels_only(url):
        meta = json.loads(fake(url))
        meta["urls"] = [{**u, "packagetype": "bdist_wheel"} for u in meta["urls"]]
        return json.dumps(meta).encode()
    with pytest.raises(SourceError, match="flask-widget 1.2.0 has no source distribution on PyPI"):
        pypi.documents("pypi:flask-widget", tmp_path, wheels_only)

    def tampered(url):
        return fake(url) if "/pypi/" in url else b"something else"
    with pytest.raises(SourceError, match="does not match the sha256"):
        pypi.documents("pypi:flask-widget", tmp_path, tampered)
    assert not (tmp_path / "flask-widget").exists()  # nothing bad was cached


@pytest.mark.parametrize("evil", ["../escape.rst", "/abs/docs/x.rst", "pkg/../../up.py"])
def test_sdist_with_escaping_member_is_refused(tmp_path, evil):
    bad = tar_bytes({"pkg-1.0/PKG-INFO": PKG_INFO, evil: "# evil"})
    with pytest.raises(SourceError, match=f"entry '{evil}' would be written outside"):
        list(pypi.documents("pypi:pkg==1.0", tmp_path, FakePyPI({("pkg", "1.0"): bad})))


def test_sdist_with_link_or_too_many_members_is_refused(tmp_path, monkeypatch):
    linked = tar_bytes({"pkg-1.0/PKG-INFO": PKG_INFO}, links={"pkg-1.0/docs/passwd.rst": "/etc/passwd"})
    with pytest.raises(SourceError, match="'pkg-1.0/docs/passwd.rst' .* is a link or special file"):
        pypi.documents("pypi:pkg==1.0", tmp_path, FakePyPI({("pkg", "1.0"): linked}))
    monkeypatch.setattr(pypi.archive, "MAX_MEMBERS", 5)
    with pytest.raises(SourceError, match="more than 5 entries"):
        pypi.documents("pypi:flask-widget==1.2.0", tmp_path,
                       FakePyPI({("flask-widget", "1.2.0"): widget_sdist()}))


def test_zip_sdist_is_read_like_a_tarball(tmp_path):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("pkg-1.0/PKG-INFO", PKG_INFO)
        z.writestr("pkg-1.0/docs/index.rst", INDEX_RST)
    docs = list(pypi.documents("pypi:pkg==1.0", tmp_path, FakePyPI({("pkg", "1.0"): buf.getvalue()})))
    assert [d.name for d in docs] == ["pkg-1.0/PKG-INFO", "pkg-1.0/docs/index.rst"]


def test_python_2_module_is_skipped_with_its_reason(tmp_path):
    sdist = widget_sdist(**{"src/flask_widget/old.py": 'print "hello"\n'})
    items = list(pypi.documents("pypi:flask-widget==1.2.0", tmp_path, FakePyPI({("flask-widget", "1.2.0"): sdist})))
    skipped = [i for i in items if isinstance(i, Skipped)]
    assert [(s.name, s.reason.split(":")[0]) for s in skipped] == [
        ("flask-widget-1.2.0/src/flask_widget/old.py", f"does not parse as Python 3.{sys.version_info.minor} (line 1)")]
    assert len([i for i in items if isinstance(i, Document)]) == 4


def test_package_ingested_and_unchanged_reingest_embeds_nothing(settings, store, embedder, monkeypatch):
    fake = FakePyPI({("flask-widget", "1.2.0"): widget_sdist()})
    monkeypatch.setattr(pypi, "fetch", fake)
    first = ingest(["pypi:flask-widget==1.2.0", "stdlib:__future__"], "pkgs", store, embedder, settings)
    assert (first.documents, first.embedded_documents, first.skipped) == (5, 5, [])
    assert (settings.cache_dir / "pypi" / "flask-widget" / "1.2.0").is_dir()
    rows = store.kb_table("pkgs").to_pandas()
    assert set(rows.source) == {"pypi:flask-widget", "stdlib:__future__"}
    assert "Flask-Widget > flask_widget.boom > Exploder > detonate" in set(rows.section)

    monkeypatch.setattr(pypi, "fetch", offline)
    before = embedder.encoded
    again = ingest(["pypi:flask-widget==1.2.0", "stdlib:__future__"], "pkgs", store, embedder, settings)
    assert (again.unchanged, again.chunks_embedded, embedder.encoded - before) == (5, 0, 0)


def test_stdlib_modules_are_read_from_the_local_python():
    (doc,) = [d for d in sources.read("stdlib:sqlite3") if d.name.endswith("sqlite3/__init__.py")]
    assert doc.source == "stdlib:sqlite3" and doc.sections[0].path == ("sqlite3",)
    assert 'cx = sqlite3.connect("test.db")' in doc.sections[0].text
    (future,) = sources.read("stdlib:__future__")
    assert "from __future__ import" in future.text
    assert ("__future__", "_Feature") not in {s.path for s in future.sections}  # private: left out
    for spec, message in [("stdlib:math", "built into Python or compiled"),
                          ("stdlib:flask", "not a standard-library module"),
                          ("stdlib:json.nothere", "no source file for 'json.nothere'")]:
        with pytest.raises(SourceError, match=message):
            list(sources.read(spec))


def minimal_pdf(lines: list[str]) -> bytes:
    """A one-page PDF with Helvetica text, built by hand so no PDF writer is involved."""
    ops = " ".join(f"BT /F1 12 Tf 72 {720 - 20 * i} Td ({t}) Tj ET" for i, t in enumerate(lines))
    objects = ["<< /Type /Catalog /Pages 2 0 R >>", "<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
               "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
               "/Resources << /Font << /F1 5 0 R >> >> >>",
               f"<< /Length {len(ops)} >>\nstream\n{ops}\nendstream",
               "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"]
    out, offsets = b"%PDF-1.4\n", []
    for i, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += f"{i} 0 obj\n{body}\nendobj\n".encode()
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    out += b"".join(f"{o:010d} 00000 n \n".encode() for o in offsets)
    out += f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    return out


def test_pdf_and_html_files_give_their_text(tmp_path):
    (tmp_path / "guide.pdf").write_bytes(minimal_pdf(["Gunicorn serves any WSGI app.", "Use --workers 4."]))
    (doc,) = sources.read(str(tmp_path / "guide.pdf"))
    assert [(s.path, s.text) for s in doc.sections] == [
        (("guide", "page 1"), "Gunicorn serves any WSGI app.\nUse --workers 4.")]
    (tmp_path / "broken.pdf").write_bytes(b"%PDF-1.4 nothing else")
    with pytest.raises(SourceError, match="broken.pdf: not a readable PDF"):
        list(sources.read(str(tmp_path / "broken.pdf")))

    html = textwrap.dedent("""\
        <html><head><title>t</title><style>p {}</style></head><body><nav>Home | Docs</nav>
        <h1>Requests</h1><p>HTTP for <em>Humans</em>.</p><h2>Install</h2><pre>pip install requests</pre>
        <ul><li>Keep-Alive</li><li>Sessions</li></ul></body></html>""")
    doc = document("src", "page.html", html.encode())
    assert [(s.path, s.text) for s in doc.sections] == [
        (("Requests",), "HTTP for Humans."),
        (("Requests", "Install"), "pip install requests\n\nKeep-Alive\n\nSessions")]
