"""CNN Lab: the Streamlit entry point. Navigation only; each page lives in pages/."""

import streamlit as st

st.set_page_config(page_title="CNN Lab", page_icon="🧠", layout="wide")

home = st.Page("pages/home.py", title="Home", icon="🏠", default=True)
navigation = st.navigation([home])
navigation.run()
