"""Data: choose a dataset and how to prepare it; see samples, class balance and augmentation."""

import dataclasses

import streamlit as st

from cnnlab.errors import CnnLabError
from cnnlab.figures import data as data_figures
from cnnlab.plain_text import as_text, as_text_lines
from cnnlab.ui.cache.data_cache import augmentation_preview, load_dataset
from cnnlab.ui.pages.data.data_form import augmentation_form, dataset_picker, preparation_form
from cnnlab.ui.session import state
from cnnlab.ui.widgets import tables

st.title("Data")
setup = state.draft()
state.show_entry_notes()

with st.container(border=True):
    dataset = dataset_picker(setup.data)
    try:
        chosen = preparation_form(dataset, setup.data)
    except CnnLabError as error:
        st.error(f"These settings do not fit together: {as_text(error)}")
        st.stop()
state.set_data(chosen)

try:
    split = load_dataset(chosen)
except CnnLabError as error:
    st.error(as_text(error))  # It may name the zip's folders and files: the uploader's words.
    st.stop()

shape = "×".join(str(size) for size in split.image_shape)
# The image shape (224×224×3) gets the widest box, so no number is cut on a 1280-pixel screen.
counts = st.columns([1, 0.8, 1.6, 1, 1, 1])
counts[0].metric("Images", f"{len(split.y_train) + len(split.y_val) + len(split.y_test):,}")
counts[1].metric("Classes", split.num_classes)
counts[2].metric("Image shape", shape)
counts[3].metric("Train", f"{len(split.y_train):,}")
counts[4].metric("Validation", f"{len(split.y_val):,}")
counts[5].metric("Test", f"{len(split.y_test):,}")
if split.skipped is not None and split.skipped.count:
    # File names are the zip's: escaped line by line, not in a fence that a name with ``` would close.
    st.warning(f"Some files were skipped.\n\n{as_text_lines(split.skipped.to_text())}")
for note in split.notes:
    st.warning(as_text(note))

samples_tab, balance_tab, augmentation_tab = st.tabs(["Samples", "Class balance", "Augmentation"])
with samples_tab:
    st.plotly_chart(
        data_figures.samples_per_class(split.x_train, split.y_train, split.class_names),
        key="samples",
    )
with balance_tab:
    st.plotly_chart(data_figures.class_balance(split.summary), key="balance")
    st.dataframe(
        split.summary.reset_index(),  # The class names as a column sized to fit them ("triangle").
        hide_index=True,
        key="summary_table",
        column_config={column: tables.count_column() for column in split.summary.columns},
    )
with augmentation_tab:
    st.caption("Random changes applied to training images only, so the network learns what does not matter.")
    augmentation = augmentation_form(setup.training.augmentation)
    state.set_training(dataclasses.replace(setup.training, augmentation=augmentation))
    if augmentation.active:
        examples, previews = augmentation_preview(chosen, augmentation)
        grid = [image for original, row in zip(examples, previews, strict=True) for image in (original, *row)]
        titles = [title for _ in examples for title in ("original", *["augmented"] * len(previews[0]))]
        st.plotly_chart(data_figures.image_grid(grid, titles, columns=6), key="augmentation_preview")
    else:
        st.info("Switch on an augmentation above to preview it.")
