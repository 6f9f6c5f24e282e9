"""The Learn page's content: convolution, stride, padding, ReLU and pooling step by step, in numpy."""
