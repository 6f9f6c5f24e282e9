"""Presentation mode on every page: large type and no sidebar, for a projector.

A toggle in the sidebar (and `?present=1` in a link) switches it on; it stays on across pages for
the session, and a button at the top of the page switches it off again (the sidebar is hidden).
`app.py` calls `apply()` once per run, before the page itself runs.
"""

from __future__ import annotations

import streamlit as st

STATE_KEY = "cnnlab_presentation"
TOGGLE_KEY = "cnnlab_presentation_toggle"
LEAVE_KEY = "cnnlab_presentation_leave"
PARAMETER = "present"
LARGE_FONT_SIZE = 22
NORMAL_FONT_SIZE = 14
CSS = """
<style>
[data-testid="stSidebar"], [data-testid="stSidebarCollapsedControl"], [data-testid="stSidebarNav"] {display: none;}
[data-testid="stMainBlockContainer"] {max-width: 100%; padding-left: 2rem; padding-right: 2rem;}
[data-testid="stMarkdownContainer"] p, [data-testid="stMarkdownContainer"] li {font-size: 1.6rem; line-height: 1.5;}
[data-testid="stWidgetLabel"] p {font-size: 1.4rem !important;}
[data-testid="stCode"] code {font-size: 1.6rem !important;}
[data-testid="stCaptionContainer"] p {font-size: 1.2rem !important;}
[data-testid="stMain"] input, [data-baseweb="select"] div {font-size: 1.3rem !important;}
[data-testid="stTable"] td, [data-testid="stTable"] th {font-size: 1.5rem !important; padding: 0.6rem 0.8rem !important;}
[data-testid="stMetricValue"] {font-size: 2.6rem !important;}
h1 {font-size: 3.2rem !important;} h2 {font-size: 2.4rem !important;} h3 {font-size: 2rem !important;}
</style>
"""


def enabled() -> bool:
    """True while this session is in presentation mode."""
    return bool(st.session_state.get(STATE_KEY, False))


def font_size() -> int:
    """The figures' font size: larger in presentation mode."""
    return LARGE_FONT_SIZE if enabled() else NORMAL_FONT_SIZE


def _set(on: bool) -> None:
    st.session_state[STATE_KEY] = on


def _toggled() -> None:
    _set(bool(st.session_state[TOGGLE_KEY]))


def _leave() -> None:
    _set(False)


def apply() -> None:
    """The sidebar toggle, and the large type (and a way out) while presentation mode is on."""
    if STATE_KEY not in st.session_state:
        _set(st.query_params.get(PARAMETER) == "1")
    # The toggle follows the session's state, whichever page or button changed it last.
    st.session_state[TOGGLE_KEY] = enabled()
    st.sidebar.toggle(
        "Presentation mode",
        key=TOGGLE_KEY,
        on_change=_toggled,
        help="Large type and no sidebar on every page, for a projector. A link with ?present=1 opens in it.",
    )
    if enabled():
        st.markdown(CSS, unsafe_allow_html=True)
        st.button("Leave presentation mode", key=LEAVE_KEY, on_click=_leave, type="tertiary")
        if st.query_params.get(PARAMETER) != "1":
            # Switching pages clears the URL's parameters; put it back so a refresh stays large.
            st.query_params[PARAMETER] = "1"
    elif PARAMETER in st.query_params:
        del st.query_params[PARAMETER]
