"""What the server does with a trained model: checkpoints, inspection, evaluation, exports, safe model files. TensorFlow, never Streamlit."""
