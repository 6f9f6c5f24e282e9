"""CNN Lab: the Streamlit entry point. Navigation only; each page lives in pages/."""

import streamlit as st

st.set_page_config(page_title="CNN Lab", page_icon="🧠", layout="wide")

pages = [
    st.Page("pages/home.py", title="Home", icon="🏠", default=True),
    st.Page("pages/data.py", title="Data", icon="🖼️"),
    st.Page("pages/model.py", title="Model", icon="🧱"),
    st.Page("pages/train.py", title="Train", icon="📈"),
    st.Page("pages/evaluate.py", title="Evaluate", icon="🎯"),
    st.Page("pages/predict.py", title="Predict", icon="🔮"),
    st.Page("pages/runs.py", title="Runs", icon="🗂️"),
    st.Page("pages/learn.py", title="Learn", icon="🎓"),
]
st.navigation(pages).run()
