"""Home: what CNN Lab is, a one-click first training run, and the recent runs."""

import streamlit as st

from cnnlab.errors import CnnLabError
from cnnlab.plain_text import as_text_lines
from cnnlab.run_request import RunRequest
from cnnlab.ui import server
from cnnlab.ui.session import state
from cnnlab.ui.widgets import run_table

st.title("CNN Lab")
st.markdown(
    "Build a convolutional neural network layer by layer, train it on real images, and watch what it "
    "learns: its filters, its feature maps and its mistakes. You work in your browser; the training runs "
    "on the server that hosts CNN Lab, with Keras under the hood, and goes on if you close the tab."
)

left, right = st.columns([1, 1])
with left, st.container(border=True):
    st.subheader("Start in one click")
    st.write(
        "Train a small CNN on 1,797 real handwritten digits (8×8 pixels). It works offline and "
        "shows live curves within seconds."
    )
    if st.button("Train a digits classifier", type="primary", key="quick_train"):
        setup = state.default_setup()
        state.set_data(setup.data)
        state.set_model(setup.model)
        state.set_training(setup.training)
        try:
            run = server.submit(RunRequest.from_setup(setup, name="Digits classifier"))
        except CnnLabError as error:  # Over the class budget.
            st.error(as_text_lines(error), icon=":material/block:")
        else:
            state.follow_run(run.id)
            st.switch_page(
                "app_pages/train.py", query_params={"run": run.id, "setup": st.query_params.get("setup", "")}
            )
with right, st.container(border=True):
    st.subheader("Or build your own")
    st.page_link("app_pages/data.py", label="1. Choose the data", icon=":material/image:")
    st.page_link("app_pages/model.py", label="2. Assemble the layers", icon=":material/view_in_ar:")
    st.page_link("app_pages/train.py", label="3. Train and watch", icon=":material/monitoring:")
    st.page_link(
        "app_pages/learn.py", label="New to CNNs? Learn how convolution works", icon=":material/school:"
    )

st.subheader("Recent runs")
if not run_table.live_runs_table("recent_runs", limit=8):
    st.caption("No runs yet.")
