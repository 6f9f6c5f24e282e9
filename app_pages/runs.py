"""Runs: every run with its status and results; manage, download and compare them."""

import streamlit as st

from cnnlab.plain_text import as_text
from cnnlab.ui import run_links, server
from cnnlab.ui.pages.runs import runs_view
from cnnlab.ui.widgets import run_owner, run_table, sweep_view, teacher_actions

st.title("Runs")
run_links.refuse_hidden_run()
every_run = server.store().list_runs()
if not every_run:
    st.info("No runs yet. Start one on the Train page.")
    st.page_link("app_pages/train.py", label="Go to Train", icon=":material/monitoring:")
    st.stop()

run_table.live_runs_table("runs_table")
sweep_view.sweeps_section()
by_id = {run.id: run for run in every_run}
chosen_ids = st.multiselect(
    "Choose one run to manage and download it, or several to compare them",
    list(by_id),
    key="chosen_runs",
    format_func=lambda run_id: f"{by_id[run_id].name} ({run_id[-4:]}, {by_id[run_id].status})",
)
chosen = [by_id[run_id] for run_id in chosen_ids]

if len(chosen) == 1:
    run = chosen[0]
    st.subheader(as_text(run.name))
    run_owner.say_whose(run)
    if run.reason:
        st.caption(f"{run.status}: {as_text(teacher_actions.reason_line(run))}")
    runs_view.manage(run)
    runs_view.downloads(run)
elif len(chosen) > 1:
    st.subheader(f"Comparing {len(chosen)} runs")
    runs_view.comparison(chosen)
