"""Plotly figures built from arrays and tables. Never calls streamlit; pages render them."""
