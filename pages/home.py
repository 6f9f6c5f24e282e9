"""Home: what CNN Lab is."""

import streamlit as st

st.title("CNN Lab")
st.write(
    "Build a convolutional neural network layer by layer, train it on real images, and watch "
    "what it learns: its filters, its feature maps and its mistakes."
)
st.info("The builder, training and evaluation pages are on their way.", icon="🚧")
