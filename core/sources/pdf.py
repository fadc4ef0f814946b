"""A PDF's text with pypdf, one section per page: a PDF has no reliable headings, but a
page number lets a reader find the passage in the original."""
from __future__ import annotations

import io
import re

from core.models import Section

MAX_PAGES = 5_000


def sections(data: bytes, title: str = "") -> tuple[Section, ...]:
    """The pages' text as sections (title, "page N"); ValueError when the PDF cannot be read."""
    from pypdf import PdfReader
    from pypdf.errors import PyPdfError

    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted and not reader.decrypt(""):
            raise ValueError("the PDF is encrypted with a password")
        if len(reader.pages) > MAX_PAGES:
            raise ValueError(f"more than {MAX_PAGES} pages")
        out = []
        for n, page in enumerate(reader.pages, 1):
            text = re.sub(r"[ \t]+\n", "\n", page.extract_text() or "")
            text = re.sub(r"\n{3,}", "\n\n", text).strip()
            if text:
                out.append(Section(((title,) if title else ()) + (f"page {n}",), text))
        return tuple(out)
    except (PyPdfError, KeyError, TypeError, AttributeError) as e:  # pypdf's reading errors on a broken file
        raise ValueError(f"not a readable PDF ({type(e).__name__}: {e})") from None
