"""Evaluate: how a trained run does on images it never saw, class by class, and where it goes wrong."""

import functools

import streamlit as st

from cnnlab.errors import CnnLabError
from cnnlab.plain_text import as_text_lines
from cnnlab.trained import evaluation, exports
from cnnlab.ui.cache import run_models
from cnnlab.ui.pages.evaluate import evaluate_view
from cnnlab.ui.session import controls
from cnnlab.ui.widgets import run_owner, tables

st.title("Evaluate")
st.caption("Measure a trained run on held-out images: accuracy, per-class scores, confusions and mistakes.")

run = run_models.choose_run("evaluate_run")
run_owner.say_whose(run)
left, right = st.columns(2)
with left:
    checkpoint = run_models.choose_checkpoint(run, "evaluate_checkpoint")
with right:
    split = st.radio(
        "Images",
        evaluation.SPLITS,
        key="evaluate_split",
        horizontal=True,
        format_func=lambda name: f"{name} split",
    )
diverged = evaluate_view.diverged_notice(run, checkpoint)
try:
    result = run_models.run_evaluation(run, checkpoint, split)
except CnnLabError as error:
    st.error(as_text_lines(error), icon=":material/block:")
    st.stop()

columns = st.columns(4)
columns[0].metric(f"{split.capitalize()} accuracy", f"{result.accuracy:.1%}")
columns[1].metric(f"{split.capitalize()} loss", f"{result.loss:.4f}")
columns[2].metric("Images", f"{result.count:,}")
columns[3].metric("Mistakes", f"{result.mistake_count:,}")

# The confusion table first, its clicked cell's images beside it; then the per-class scores.
cell_waits = evaluate_view.confusion_section(checkpoint, result)

table_column, downloads_column = st.columns([5, 3])
with table_column:
    st.subheader("Per class")
    report = evaluation.per_class_report(result)
    st.dataframe(
        report,
        hide_index=True,
        key="evaluate_report",
        column_config={
            **{
                name: st.column_config.NumberColumn(name, format="%.3f")
                for name in ("precision", "recall", "f1")
            },
            "support": tables.count_column(),
        },
    )
    st.caption(
        "Precision: of the images predicted as the class, the share that are. Recall: of the images of "
        "the class, the share found. F1: their harmonic mean. Support: how many images of the class."
    )
with downloads_column:
    st.download_button(
        "Download metrics (CSV)",
        functools.partial(evaluation.metrics_csv, result),  # Written when clicked, not on every rerun.
        file_name=f"{exports.file_stem(run)}_{checkpoint.name}_{split}_metrics.csv",
        mime="text/csv",
        key="evaluate_metrics_csv",
        icon=":material/download:",
        on_click="ignore",
    )
    if controls.layers_hidden_from_viewer(run):
        st.caption("The exercise hides the model's layers, so its file does not download.")
    else:
        st.download_button(
            "Download the model (.keras)",
            functools.partial(
                run_models.checkpoint_bytes, run, checkpoint
            ),  # Read when clicked, not on every rerun.
            file_name=f"{exports.file_stem(run)}_{checkpoint.name}.keras",
            mime="application/zip",
            key="evaluate_model_download",
            icon=":material/download:",
            on_click="ignore",
        )
st.subheader("Most confident mistakes")
if diverged:
    evaluate_view.diverged_mistakes(result)
mistakes_wait = False if diverged else evaluate_view.mistakes_section(checkpoint, result)
evaluate_view.load_for_overlays(checkpoint, cell_waits or mistakes_wait)
