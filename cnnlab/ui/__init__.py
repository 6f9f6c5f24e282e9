"""Streamlit helpers shared by the pages: state keys, common widgets, cached loaders."""
