"""CNN Lab: the Streamlit entry point. Navigation only; each page lives in app_pages/.

The folder is not called `pages/`: next to the entry script that name switches on Streamlit's
older multipage mode, in which opening a page's address directly runs that file without this one
(no navigation, no page settings) and lists the files' names in the sidebar.

`streamlit run app.py` first imports this file as a module, finds the `st.App` at the end and
serves this same file with it: the App's lifespan starts the scheduler and a warm worker when the
server starts (`cnnlab.ui.server.lifespan`), so the worker imports TensorFlow before the first
visitor arrives. Streamlit then runs the file as the script of every page view (`__name__ ==
"__main__"`, as under AppTest), which draws the page.
"""

import contextlib
from collections.abc import AsyncIterator

import streamlit as st


def main() -> None:
    """Draw the page the address names, behind the sign-in gate, with what every page shares."""
    from cnnlab.ui import script_runs, server
    from cnnlab.ui.session import controls, identity, presentation, sign_in
    from cnnlab.ui.widgets import followed_run

    # Streamlit would clear Keras's session (and collect all garbage) after every run: see script_runs.
    script_runs.keep_keras_between_runs()
    st.set_page_config(page_title="CNN Lab", page_icon="assets/icon.png", layout="wide")
    # The sign-in gate: nothing without sign-in configured; else the sign-in screen until someone signs in.
    sign_in.gate()
    pages = [
        st.Page("app_pages/home.py", title="Home", icon=":material/home:", default=True),
        st.Page("app_pages/data.py", title="Data", icon=":material/image:"),
        st.Page("app_pages/model.py", title="Model", icon=":material/view_in_ar:"),
        st.Page("app_pages/train.py", title="Train", icon=":material/monitoring:"),
        st.Page("app_pages/evaluate.py", title="Evaluate", icon=":material/target:"),
        st.Page("app_pages/predict.py", title="Predict", icon=":material/online_prediction:"),
        st.Page("app_pages/runs.py", title="Runs", icon=":material/folder_open:"),
        st.Page("app_pages/learn.py", title="Learn", icon=":material/school:"),
    ]
    if identity.current_user().is_teacher:
        pages.append(st.Page("app_pages/teacher.py", title="Teacher", icon=":material/co_present:"))
    navigation = st.navigation(pages)
    # On every page: presentation mode, and the exercise a student opened (its banner and fixed controls).
    presentation.apply()
    controls.apply()
    # The run this session follows, in the sidebar and back in the URL on every page (the Train page's
    # live view follows it through its stream: the card does not poll there).
    followed_run.show(live_page=navigation.url_path == "train")
    # Not while the server's background thread imports the pages' modules (pandas cannot be imported
    # by two threads at once); the first page runs before that import starts.
    server.wait_for_page_imports()
    try:
        navigation.run()
    finally:
        # In background threads, once per server: the scheduler and a warm worker, should no lifespan
        # have started them, and the modules the Train page needs and Home does not.
        server.start_in_background()


@contextlib.asynccontextmanager
async def _lifespan(started: st.App) -> AsyncIterator[None]:
    # Imported here, once the runtime runs: the pages' cached functions then find the real cache.
    from cnnlab.ui import server

    async with server.lifespan(started):
        yield


if __name__ == "__main__":
    main()
else:
    # The routes that set and clear the HttpOnly sign-in cookie (a page cannot: it has no HTTP response),
    # and the live streams of runs and of the class (Server-Sent Events), with the plotly.js they draw with.
    from cnnlab.ui.session import cookie_routes
    from cnnlab.ui.stream import routes as stream_routes

    app = st.App(__file__, lifespan=_lifespan, routes=[*cookie_routes.ROUTES, *stream_routes.ROUTES])
