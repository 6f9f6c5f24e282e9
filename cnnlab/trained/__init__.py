"""What the server does with a trained model: checkpoints, inspection, the layer walk, evaluation, exports, safe model files. TensorFlow, never Streamlit."""
