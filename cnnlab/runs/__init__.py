"""Runs: the store, the job contract, the worker process, training and its callbacks, the executor and the scheduler. Never Streamlit."""
