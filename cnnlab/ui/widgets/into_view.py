"""Bring feedback into the window: a components-v2 element (inline, no iframe) that scrolls the element
drawn just before it into view, once per piece of news.

Streamlit keeps the page where it was when a click reruns it, so a result drawn under a button near the
bottom of the window appears out of sight. Drawn right after the result, this scrolls the least that
shows it whole (`scrollIntoView` with `block: "nearest"`), and does nothing when it is in view already.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from typing import Any

import streamlit as st

SCRIPT = """
export default function (component) {
  const { data, parentElement } = component;
  window.__cnnlabShown = window.__cnnlabShown || new Set();
  if (window.__cnnlabShown.has(data.news)) return;
  window.__cnnlabShown.add(data.news);
  const own = parentElement.closest('[data-testid="stElementContainer"]') || parentElement;
  const said = own.previousElementSibling;
  if (said) requestAnimationFrame(() => said.scrollIntoView({ block: "nearest" }));
}
"""


@cache
def _component() -> Callable[..., Any]:
    return st.components.v2.component("cnnlab_into_view", js=SCRIPT, isolate_styles=False)


def bring_into_view(key: str, news: str) -> None:
    """Scroll the element drawn just before this call into view, once for each distinct `news`
    (an id of what it says: the same news redrawn by a later rerun does not scroll again)."""
    _component()(key=key, data={"news": news})
