"""CNN Lab: the Streamlit entry point. Navigation only; each page lives in app_pages/.

The folder is not called `pages/`: next to the entry script that name switches on Streamlit's
older multipage mode, in which opening a page's address directly runs that file without this one
(no navigation, no page settings) and lists the files' names in the sidebar.
"""

import streamlit as st

from cnnlab.ui import controls, identity, presentation, server, sign_in

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
try:
    navigation.run()
finally:
    # Once the first page is drawn, start the scheduler and a warm worker (once per server, in a thread).
    server.start_in_background()
