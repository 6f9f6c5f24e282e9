"""What a CNN is: layers, shapes, checks, presets, Keras descriptions and code. No TensorFlow except `build`."""
