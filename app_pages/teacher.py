"""Teacher: the class's runs live, stop or share any of them, a leaderboard, and exercise links."""

import streamlit as st

from cnnlab.ui.pages.teacher import teacher_console
from cnnlab.ui.session import identity

st.title("Teacher's console")
if not identity.current_user().is_teacher:
    # The page is listed for teachers only; a direct address gets nothing of it either.
    st.error("This page is for teachers. Sign in as a teacher to see the class's runs.")
    st.stop()
teacher_console.console()
