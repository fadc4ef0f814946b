import zipfile

import pytest

from core import sources
from core.errors import SourceError
from core.models import Document, Skipped
from core.sources.text import to_sections


def test_markdown_headings_become_section_paths_and_code_is_kept():
    text = "# Guide\n\nIntro.\n\n## Install\n\n```bash\n# not a heading\npip install x\n```\n\n### Extras\n\nMore."
    sections = to_sections(text, "markdown")
    assert [s.path for s in sections] == [("Guide",), ("Guide", "Install"), ("Guide", "Install", "Extras")]
    assert "# not a heading\npip install x" in sections[1].text


def test_rst_markup_noise_is_removed_and_headings_kept():
    text = ("Title\n=====\n\nUse :func:`connect` and ``commit()``.\n\n.. toctree::\n   :maxdepth: 2\n\n   other\n\n"
            "Part\n----\n\nSee `the docs <https://x.org>`_.\n\n.. code-block:: python\n\n   x = 1\n")
    sections = to_sections(text, "rst")
    assert [s.path for s in sections] == [("Title",), ("Title", "Part")]
    assert sections[0].text == "Use connect and commit()."
    assert "toctree" not in sections[0].text and "maxdepth" not in sections[0].text
    assert "See the docs." in sections[1].text and "x = 1" in sections[1].text


def test_rst_roles_links_fields_and_admonitions_become_text():
    text = ("API\n===\n\nSends it. See the (connect,\nread) :ref:`timeout tuple <timeouts>`, `Blinker`_, "
            "|fetch|_ and\n`docs <https://x.org>`__ [#]_.\n\n:param request: The :class:`~requests.Request`.\n"
            ":rtype: requests.Response\n\n.. versionadded:: 2.1\n\n.. _timeouts:\n\n.. |fetch| replace:: fetch()\n\n"
            "Usage::\n\n    >>> s.get(url, timeout=(3, 27))\n")
    (section,) = to_sections(text, "rst")
    assert section.text == ("Sends it. See the (connect,\nread) timeout tuple, Blinker, fetch and\ndocs.\n\n"
                            "Parameter request: The requests.Request.\nReturn type: requests.Response\n\n"
                            "New in version: 2.1\n\nUsage:\n\n    >>> s.get(url, timeout=(3, 27))")


def test_markdown_badges_images_and_links_become_text_but_code_is_untouched():
    text = ("# Requests\n\n[![Version](https://img.shields.io/v.svg)](https://pypi.org/project/requests/)\n"
            "<p align=\"center\">Read [the docs](https://requests.readthedocs.io) now.</p>\n\n"
            "```html\n<a href=\"[x](y)\">link</a>\n```\n")
    (section,) = to_sections(text, "markdown")
    assert section.text == ('Read the docs now.\n\n```html\n<a href="[x](y)">link</a>\n```')


def test_html_text_and_headings():
    html = "<html><head><script>evil()</script></head><body><h1>A</h1><p>One <b>two</b></p>" \
           "<h2>B</h2><pre>code  here</pre></body></html>"
    sections = to_sections(html, "html")
    assert [(s.path, s.text) for s in sections] == [(("A",), "One two"), (("A", "B"), "code  here")]


def test_folder_skips_unreadable_files_with_reasons(tmp_path):
    (tmp_path / "good.md").write_text("# Good\n\ntext")
    (tmp_path / "bad.txt").write_bytes(b"\x00\x01binary")
    (tmp_path / "image.png").write_bytes(b"\x89PNG")
    (tmp_path / ".git").mkdir()
    (tmp_path / ".git" / "config.txt").write_text("hidden")
    items = list(sources.read(str(tmp_path)))
    docs = [i for i in items if isinstance(i, Document)]
    skipped = {i.name: i.reason for i in items if isinstance(i, Skipped)}
    assert [d.name for d in docs] == ["good.md"]
    assert skipped == {"bad.txt": "binary file (NUL bytes), not text", "image.png": "type '.png' is not read"}


def test_zip_is_read_and_traversal_refused(tmp_path):
    ok = tmp_path / "ok.zip"
    with zipfile.ZipFile(ok, "w") as z:
        z.writestr("docs/a.md", "# A\n\nalpha")
        z.writestr("__MACOSX/docs/._a.md", "junk")
    assert [d.name for d in sources.read(str(ok))] == ["docs/a.md"]

    for evil in ("../escape.md", "/etc/abs.md", "docs/../../up.md", "C:/win.md", "..\\back.md"):
        bad = tmp_path / "bad.zip"
        with zipfile.ZipFile(bad, "w") as z:
            z.writestr("fine.md", "# fine")
            z.writestr(evil, "# evil")
        with pytest.raises(SourceError, match="outside the archive's folder"):
            list(sources.read(str(bad)))


def test_unknown_spec_and_broken_zip_are_clear_errors(tmp_path):
    with pytest.raises(SourceError, match="no such file or folder"):
        sources.read(str(tmp_path / "missing"))
    (tmp_path / "broken.zip").write_bytes(b"not a zip")
    with pytest.raises(SourceError, match="broken.zip: not a readable zip archive"):
        list(sources.read(str(tmp_path / "broken.zip")))
