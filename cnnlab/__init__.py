"""CNN Lab: build, train and look inside convolutional neural networks.

The core package never imports streamlit (except `cnnlab.ui`) and keeps TensorFlow out of the
modules that must answer instantly (`specs`, `catalogue`, `shapes`, `presets`, `codegen`).
"""

__version__ = "0.1.0"
