"""User-supplied text shown as text: the one place names enter markdown or a chart.

Display names, run names, zip folder and file names, sweep and exercise names are typed by users.
Streamlit renders markdown (bold, links, images that the browser fetches, `$math$`, `:icon:`
shortcodes, HTML-looking tags) in `st.markdown`, captions, headers, alerts, labels and `st.table`
cells; plotly renders a subset of HTML (`<b>`, `<a href>`, `<br>`) in legends, titles and hover
text. `as_text` makes a string read literally in markdown, `as_chart_text` in a plotly figure.
Every page passes user text through one of them where it enters markdown or a chart; tables made
with `st.dataframe` and widget values show plain text already and need neither.
"""

from __future__ import annotations

import html
import string

# CommonMark lets a backslash escape any ASCII punctuation; escaping all of it is always safe.
_MARKDOWN_ESCAPES = {ord(character): "\\" + character for character in string.punctuation}
# Streamlit turns ":name:" into an emoji or icon after the escapes are read, so a colon is followed by
# a word joiner (invisible, not a space) that breaks the shortcode without changing what is read.
_WORD_JOINER = "\u2060"
_MARKDOWN_ESCAPES[ord(":")] = "\\:" + _WORD_JOINER


def as_text(text: object) -> str:
    """`text` (a user's name for something) escaped so that markdown shows it exactly, on one line.

    Bold, links, images, HTML, math and `:shortcode:` all stay literal characters; line breaks
    become spaces, so a name cannot start a heading or a list.
    """
    one_line = " ".join(str(text).splitlines())
    return one_line.translate(_MARKDOWN_ESCAPES)


def as_chart_text(text: object) -> str:
    """`text` escaped for a plotly label (legend, title, axis, hover): its HTML subset stays literal."""
    return html.escape(" ".join(str(text).splitlines()), quote=False)
