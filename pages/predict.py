"""Predict: arrives with its own issue; until then the page says so."""

import streamlit as st

st.title("Predict")
st.info("This page is being built and arrives in a coming release.", icon="🚧")
