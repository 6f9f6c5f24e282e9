"""Learn: convolution, stride, padding, ReLU and pooling, step by step, then a trained model's real kernels."""

import numpy as np
import pandas as pd
import streamlit as st

from cnnlab.errors import CnnLabError
from cnnlab.figures import learn as figures
from cnnlab.lesson import arithmetic, content
from cnnlab.plain_text import as_text_lines
from cnnlab.ui.pages.learn import learn_model, learn_widgets
from cnnlab.ui.session import presentation

st.title("Learn: how a convolution sees an image")

st.header("1. A worked example: an X and a vertical-edge filter", anchor="worked-example")
st.caption(f"From {content.SOURCE_ARTICLE}, one of the tutorials CNN Lab grew from.")
st.markdown(
    "A 6x6 picture of the letter **X** (1 is ink, 0 is background) and a 3x3 **vertical-edge filter**. "
    "The filter slides over the image; at every position it multiplies its numbers with the pixels "
    "underneath and adds them up. Stride 1 and no padding turn the 6x6 image into a 4x4 feature map."
)
st.caption(
    "The article's own patch, written the same way: "
    + arithmetic.convolution_step(content.ARTICLE_PATCH, content.KERNELS["Vertical edge"], 1, "valid", 0).text
)
learn_widgets.walkthrough(
    content.x_image(), content.KERNELS["Vertical edge"], 1, "valid", key="learn_example"
)

st.header("2. Try your own: input, kernel, stride and padding", anchor="controls")
input_column, kernel_column, settings_column = st.columns([4, 3, 3])
with input_column:
    image, image_note = learn_widgets.choose_input()
    st.caption(image_note)
with kernel_column:
    kernel, kernel_name = learn_widgets.choose_kernel()
with settings_column:
    stride = st.slider(
        "Stride", 1, 3, 1, key="learn_stride", help="How many pixels the window moves each step."
    )
    padding = st.radio(
        "Padding",
        arithmetic.PADDINGS,
        key="learn_padding",
        horizontal=True,
        help="'valid': no padding, the output shrinks. 'same': a border of zeros keeps the size (stride 1).",
    )

try:
    shape = arithmetic.output_shape(image.shape, kernel.shape, stride, padding)
except CnnLabError as error:
    st.error(as_text_lines(error))
    st.stop()
signature = f"{image.tobytes().hex()}|{kernel.tobytes().hex()}|{stride}|{padding}"
predicting = learn_widgets.predict_mode()
guess = learn_widgets.answer(signature) if predicting else None
revealed = not predicting or guess is not None
learn_widgets.formula(image.shape, kernel.shape, stride, padding, reveal=revealed)
if not revealed:
    learn_widgets.ask_prediction(signature)
elif guess is not None:
    learn_widgets.verdict(guess, shape)
feature_map = arithmetic.convolve(image, kernel, stride, padding)
if revealed:
    learn_widgets.walkthrough(image, kernel, stride, padding, key="learn_explore")

st.header("3. ReLU, then max and average pooling", anchor="relu-pooling")
if not revealed:
    st.info("Check your prediction above to see this feature map, its ReLU and its pooling.")
else:
    st.markdown(
        "**ReLU**, f(x) = max(0, x): every negative value in the feature map becomes 0, positives pass unchanged. "
        "**Pooling** then shrinks the map: each window becomes one number, its maximum or its average."
    )
    size = presentation.font_size()
    height = int(min(max(feature_map.shape[0], 3) * 46 * size / 14 + 120, 640))
    st.plotly_chart(
        figures.relu_figure(feature_map, font_size=size, height=height),
        key="learn_relu_chart",
        config={"displayModeBar": False},
    )
    rectified = arithmetic.relu(feature_map)
    largest = int(min(rectified.shape))
    if largest < 2:
        st.info(
            f"The feature map is {rectified.shape[0]}x{rectified.shape[1]}: too small to pool. Use a larger input."
        )
    else:
        pool_size = int(
            st.radio("Pooling window", [2, 3][: largest - 1], key="learn_pool_size", horizontal=True)
        )
        st.plotly_chart(
            figures.pooling_figure(rectified, size=pool_size, font_size=size, height=height),
            key="learn_pool_chart",
            config={"displayModeBar": False},
        )
        maximum, average = (
            arithmetic.pool(rectified, pool_size, "max"),
            arithmetic.pool(rectified, pool_size, "average"),
        )
        st.markdown(
            f"Max pooling keeps the strongest response of each window (largest: **{arithmetic.format_number(maximum.max())}**); "
            f"average pooling dilutes it (largest: **{arithmetic.format_number(average.max())}**). "
            f"In Keras: `layers.MaxPooling2D(({pool_size}, {pool_size}))`."
        )
    st.table(pd.DataFrame(content.POOLING_COMPARISON).set_index("Factors"))

st.header("4. Your model's real kernels", anchor="real-model")
st.markdown(
    "A trained network learns its own kernel numbers. Pick a run and one of its convolution layers: its real "
    "kernels are applied to the input from section 2 the same way, multiply and add."
)
learn_model.real_model_section(np.asarray(image, dtype=float))
