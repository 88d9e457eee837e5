"""MkDocs hook: the navigation file is read, then dropped from the site.

``docs/gen_pages.py`` writes ``SUMMARY.md`` for mkdocs-literate-nav, which turns it
into the navigation when it sees the files (last of the plugins). The file itself is
not a page for readers, so it is removed from the build right after. And the search
index gets formulas as plain text rather than LaTeX source."""

import json
import re
from pathlib import Path

from mkdocs.plugins import event_priority


@event_priority(-110)  # after literate-nav (-100) has read the navigation
def on_files(files, config):
    summary = files.get_file_from_path("SUMMARY.md")
    if summary is not None:
        files.remove(summary)
    return files


_DISPLAY = re.compile(r"\\\[(.*?)\\\]", re.S)
_INLINE = re.compile(r"\\\((.*?)\\\)", re.S)
_COMMAND = re.compile(r"\\(?:[a-zA-Z]+|.)")


def plain_math(tex: str) -> str:
    """A formula as a search snippet: ``\\mathcal N(z;\\ 0, I_d)`` becomes ``N(z; 0, I_d)``."""
    text = _COMMAND.sub(" ", tex).replace("{", "").replace("}", "").replace("&", "")
    return re.sub(r"\s+", " ", text).strip()


@event_priority(-100)  # after the search plugin has written its index
def on_post_build(config):
    """Search snippets without raw LaTeX: the index holds each formula's text."""
    index = Path(config["site_dir"]) / "search" / "search_index.json"
    if not index.is_file():
        return
    record = json.loads(index.read_text())
    for doc in record.get("docs", []):
        for key in ("text", "title"):
            value = doc.get(key, "")
            value = _DISPLAY.sub(lambda m: " " + plain_math(m.group(1)) + " ", value)
            doc[key] = _INLINE.sub(lambda m: plain_math(m.group(1)), value)
    index.write_text(json.dumps(record, separators=(",", ":")))
