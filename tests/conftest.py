"""Shared test settings: keep TensorFlow quiet and every run's files inside a temporary home."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
