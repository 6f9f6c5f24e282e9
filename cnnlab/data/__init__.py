"""Datasets, safe image decoding and preprocessing for the model. numpy and PIL only: never TensorFlow or Streamlit."""
