"""User-supplied text shown as text: the one place names enter markdown or a chart.

Display names, run names, zip folder and file names, sweep and exercise names are typed by users.
Streamlit renders markdown (bold, links, images that the browser fetches, `$math$`, `:icon:`
shortcodes, HTML-looking tags) in `st.markdown`, captions, headers, alerts, labels and `st.table`
cells; plotly renders a subset of HTML (`<b>`, `<a href>`, `<br>`) in legends, titles and hover
text. `as_text` makes a string read literally in markdown (`as_text_lines` for a message of several
lines, such as an error that names a run or a file), `as_chart_text` in a plotly figure.
Every page passes user text through one of them where it enters markdown or a chart; the figures
that draw class names (a zip's folder names) escape them themselves; tables made with
`st.dataframe` and widget values show plain text already and need neither.
"""

from __future__ import annotations

import html
import re

# CommonMark lets a backslash escape any ASCII punctuation; escaping all of it is always safe.
_PUNCTUATION = re.compile(r"([!-/:-@\[-`{-~])")
# Streamlit turns ":name:" into an emoji or icon after the escapes are read, so a colon that could
# open one (a character follows it) gets a word joiner: invisible, and not a space.
_SHORTCODE_COLON = re.compile(r"\\:(?=\S)")
_WORD_JOINER = "\u2060"


def as_text(text: object) -> str:
    """`text` (a user's name for something) escaped so that markdown shows it exactly, on one line.

    Bold, links, images, HTML, math and `:shortcode:` all stay literal characters; line breaks
    become spaces, so a name cannot start a heading or a list.
    """
    one_line = " ".join(str(text).splitlines())
    escaped = _PUNCTUATION.sub(r"\\\1", one_line)
    return _SHORTCODE_COLON.sub(lambda found: found.group(0) + _WORD_JOINER, escaped)


def as_text_lines(text: object) -> str:
    """`text` (a message that may embed a user's name, such as an error's) escaped like `as_text`, line by
    line: its line breaks stay line breaks in markdown, and no line can start a heading or a list."""
    return "  \n".join(as_text(line) for line in str(text).splitlines())


def as_chart_text(text: object) -> str:
    """`text` escaped for a plotly label (legend, title, axis, hover): its HTML subset stays literal."""
    return html.escape(" ".join(str(text).splitlines()), quote=False)
