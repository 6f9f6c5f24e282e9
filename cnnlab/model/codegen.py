"""Spec and settings to a runnable, readable Keras training script in the keras-io style.

The script is written from `keras_config`, the description `build` and `training` also use, so
the model it builds has the same layers, arguments and parameter count as the app's. Its split is
the app's: `cnnlab.data.splits.stratified_split` (and `stratified_subset`) copied into the script
as numpy code, so the same seed gives the same train, validation and test images without CNN Lab
installed. It never imports TensorFlow itself, so the Model page can show it on every edit.
"""

from __future__ import annotations

import dataclasses
import inspect
import json
import re
import textwrap
from pathlib import PurePath
from typing import Any

from cnnlab.data import splits
from cnnlab.model import codegen_data, keras_config, shapes
from cnnlab.specs import DataSettings, ModelSpec, TrainingSettings


def python_literal(value: Any) -> str:
    """`value` as Python source: strings in double quotes, tuples and mappings spelled out."""
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, tuple | list):
        items = ", ".join(python_literal(item) for item in value)
        return f"({items},)" if len(value) == 1 else f"({items})"
    if isinstance(value, dict):
        return (
            "{"
            + ", ".join(f"{python_literal(key)}: {python_literal(item)}" for key, item in value.items())
            + "}"
        )
    return repr(value)


def _argument(key: str, value: Any) -> str:
    if key.endswith("_regularizer"):
        return (
            f"{key}=regularizers.L1L2(l1={float(value.get('l1', 0.0))!r}, l2={float(value.get('l2', 0.0))!r})"
        )
    return f"{key}={python_literal(value)}"


def call_source(call: keras_config.KerasCall, indent: str = "") -> str:
    """One constructor call as source, e.g. `layers.Conv2D(filters=32, kernel_size=3, name="conv2d_1")`.

    A call longer than a line puts one argument per line, indented under `indent`.
    """
    arguments = [_argument(key, value) for key, value in call.arguments.items()]
    module = {"layers": "layers", "applications": "keras.applications"}.get(
        call.module, f"keras.{call.module}"
    )
    one_line = f"{module}.{call.class_name}({', '.join(arguments)})"
    if len(indent) + len(one_line) <= 96:
        return one_line
    inner = "".join(f"\n{indent}    {argument}," for argument in arguments)
    return f"{module}.{call.class_name}({inner}\n{indent})"


def model_source(spec: ModelSpec, settings: TrainingSettings | None = None) -> str:
    """A `build_model()` function that returns the Keras model for `spec` (as trained with `settings`)."""
    effective = keras_config.training_spec(spec, settings)
    lines = ["def build_model():", f'    """Build the {spec.name} model: {len(effective.layers)} layers."""']
    items = []
    for call in keras_config.layer_calls(effective):
        if call.module == "applications":
            variable = call.arguments["name"]
            lines.append(f"    {variable} = {call_source(call, '    ')}")
            if call.fine_tune_layers:
                lines.append(f"    {variable}.trainable = True")
                lines.append(f"    for layer in {variable}.layers[:-{call.fine_tune_layers}]:")
                lines.append(
                    f"        layer.trainable = False  # fine-tune only the last {call.fine_tune_layers} layers"
                )
            else:
                state = "trainable: fine-tuned" if call.trainable else "frozen: keeps its pretrained features"
                lines.append(f"    {variable}.trainable = {call.trainable!r}  # {state}")
            items.append(variable)
        else:
            items.append(call_source(call, " " * 12))
    lines.append("    return keras.Sequential(")
    lines.append("        [")
    lines.append(f"            keras.Input(shape={python_literal(tuple(effective.input_shape))}),")
    lines.extend(f"            {item}," for item in items)
    lines.append("        ],")
    lines.append(f"        name={python_literal(spec.name)},")
    lines.append("    )")
    return "\n".join(lines)


def _data_source(data: DataSettings, input_shape: tuple[int, int, int]) -> str:
    """`split_indices` and `load_data`: the images fitted to the model and split as the app splits them."""
    fractions = f"validation_fraction={data.validation_fraction!r}, test_fraction={data.test_fraction!r}"
    subset = (
        f"indices = stratified_subset(labels, {data.subset}, int(labels.max()) + 1, seed)"
        if data.subset is not None
        else "indices = np.arange(len(labels))"
    )
    own = codegen_data.is_own_images(data)
    path_parameter, path_argument = (", data_path=DATA_PATH", "data_path") if own else ("", "")
    split = textwrap.dedent(
        f'''\
        def split_indices(labels, {fractions}, seed={data.seed}):
            """The indices of the train, validation and test images: CNN Lab's split, class by class, by seed."""
            {subset}
            parts = stratified_split(labels[indices], validation_fraction, test_fraction, seed)
            return tuple(indices[part] for part in parts)
        '''
    )
    load = textwrap.dedent(
        f'''\
        def load_data({fractions}, seed={data.seed}{path_parameter}):
            """The train, validation and test parts, each (images, labels, names), as CNN Lab splits them."""
            images, labels, names = load_images({path_argument})
        '''
    )
    body = codegen_data.fit_source(input_shape) + textwrap.dedent(
        """\
        parts = split_indices(labels, validation_fraction, test_fraction, seed)
        return tuple((images[part], labels[part], [names[index] for index in part]) for part in parts)
        """
    )
    return "\n\n\n".join(
        [
            codegen_data.load_images_source(data, input_shape),
            split.rstrip(),
            load + textwrap.indent(body, "    ").rstrip(),
        ]
    )


_SUBSET_SOURCE = '''
def stratified_subset(labels, subset, num_classes, seed):
    """Indices of at most `subset` images keeping the class proportions, as CNN Lab picks them."""
    if subset >= len(labels):
        return np.arange(len(labels))
    present = np.bincount(labels, minlength=num_classes)
    allocated = _largest_remainder(present.astype(np.int64), subset)
    rng = np.random.default_rng([seed, 1])
    chosen = [
        rng.permutation(np.flatnonzero(labels == index))[: allocated[index]] for index in range(num_classes)
    ]
    return np.sort(np.concatenate(chosen))
'''


def _split_functions(names: list[str]) -> list[str]:
    """The `cnnlab.data.splits` functions named, and the module's functions they call (transitively),
    in the module's order."""
    functions = {
        name: value
        for name, value in vars(splits).items()
        if inspect.isfunction(value) and value.__module__ == splits.__name__
    }
    chosen, waiting = set(names), list(names)
    while waiting:
        source = inspect.getsource(functions[waiting.pop()])
        for name in functions:
            if name not in chosen and re.search(rf"\b{name}\(", source):
                chosen.add(name)
                waiting.append(name)
    return [name for name in functions if name in chosen]


def split_source(with_subset: bool = False) -> str:
    """CNN Lab's stratified split (and subset) as script code: `cnnlab.data.splits`'s own source,
    with the helpers it calls, so the script splits exactly as the app does."""
    helpers = _split_functions(
        ["stratified_split", "_largest_remainder"] if with_subset else ["stratified_split"]
    )
    parts = [inspect.getsource(getattr(splits, name)).strip() for name in helpers]
    if with_subset:
        parts.insert(len(parts) - 1, _SUBSET_SOURCE.strip())
    return "\n\n\n".join(parts)


def _training_source(spec: ModelSpec, settings: TrainingSettings, data: DataSettings) -> str:
    optimizer = call_source(keras_config.optimizer_call(settings))
    callbacks = []
    for call in keras_config.callback_calls(settings):
        if call.class_name == "LearningRateScheduler":
            callbacks.append("keras.callbacks.LearningRateScheduler(learning_rate_schedule)")
        else:
            callbacks.append(call_source(call, " " * 8))
    schedule = keras_config.learning_rate_expression(settings)
    schedule_source = (
        f'def learning_rate_schedule(epoch, learning_rate):\n    """The {settings.schedule} schedule: the rate for epoch `epoch` (from 0)."""\n'
        f"    return {schedule}\n\n\n"
        if schedule
        else ""
    )
    callback_list = (
        "[" + "".join(f"\n            {callback}," for callback in callbacks) + "\n        ]"
        if callbacks
        else "[]"
    )
    own = codegen_data.is_own_images(data)
    path_parameter, path_argument = (", data_path=DATA_PATH", "data_path=data_path") if own else ("", "")
    path_option = (
        '    parser.add_argument("--data", default=DATA_PATH, help="your folder (or .zip) of class folders")\n'
        if own
        else ""
    )
    return f"""{schedule_source}def main(epochs={settings.epochs}{path_parameter}, split_file=None):
    keras.utils.set_random_seed({settings.seed})
    train, validation, test = load_data({path_argument})
    (x_train, y_train, _), (x_val, y_val, _), (x_test, y_test, _) = train, validation, test
    print("Training images:", x_train.shape, "validation:", x_val.shape, "test:", x_test.shape)
    if split_file:
        with open(split_file, "w", encoding="utf-8") as file:
            json.dump({{"train": train[2], "validation": validation[2], "test": test[2]}}, file, indent=1)

    model = build_model()
    model.summary()
    model.compile(
        loss={python_literal(shapes.loss_for(spec))},
        optimizer={optimizer},
        metrics=["accuracy"],
    )
    model.fit(
        x_train,
        y_train,
        batch_size={settings.batch_size},
        epochs=epochs,
        validation_data=(x_val, y_val),
        callbacks={callback_list},
    )

    test_loss, test_accuracy = model.evaluate(x_test, y_test, verbose=0)
    print("Test loss:", test_loss)
    print("Test accuracy:", test_accuracy)
    model.save({python_literal(download_name(spec, ".keras"))})


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description={python_literal(f"Train {spec.name} as CNN Lab does.")})
    parser.add_argument(
        "--epochs", type=int, default={settings.epochs}, help="how many epochs to train (default: {settings.epochs})"
    )
{path_option}    parser.add_argument("--split-file", help="write the train, validation and test image names here (JSON)")
    options = parser.parse_args()
    main(epochs=options.epochs{", data_path=options.data" if own else ""}, split_file=options.split_file)
"""


def without_folder(data: DataSettings) -> DataSettings:
    """`data` with a dataset path (a user's folder or zip) cut to its last part: the script finds the
    file next to it, and the server's folders stay on the server."""
    name = PurePath(data.dataset).name
    return data if name in ("", data.dataset) else dataclasses.replace(data, dataset=name)


def script(
    spec: ModelSpec,
    settings: TrainingSettings | None = None,
    data: DataSettings | None = None,
    file_name: str | None = None,
    keep_folder: bool = False,
) -> str:
    """The whole training script for `spec`: imports, the split, `load_data`, `build_model`, `main`.

    `file_name` is the name the script is saved under (default: the model's name with ".py"), so
    its docstring says how to run the file the user has. A user's folder or zip is named by its
    name only (a script from the server never carries the server's folders) unless `keep_folder`:
    `cnnlab code` runs where the user's own data is.
    """
    settings = settings or TrainingSettings()
    data = data or DataSettings()
    data = data if keep_folder else without_folder(data)
    shapes.check(spec)
    model = model_source(spec, settings)
    training = _training_source(spec, settings, data)
    loading = _data_source(data, spec.input_shape)
    standard, others = codegen_data.imports(data)
    standard += ["import argparse", "import json"] + (["import math"] if "math." in training else [])
    imports = sorted({line for line in standard if line.startswith("import ")})
    imports += sorted({line for line in standard if line.startswith("from ")})
    imports += ["", "import keras", "import numpy as np"]
    imports.append(
        "from keras import layers, regularizers" if "regularizers." in model else "from keras import layers"
    )
    imports += sorted(others)
    needed = {"digits": " and scikit-learn", "shapes": " and Pillow"}.get(data.dataset, "")
    if codegen_data.is_own_images(data):
        needed = " and Pillow. Give it your folder of images (one subfolder per class) with `--data PATH`"
    header = textwrap.dedent(
        f'''\
        """
        Title: {_docstring_text(spec.name)} on {_docstring_text(data.dataset)}
        Description: Build, train and evaluate a convolutional neural network, exported from CNN Lab.

        Run it with `python {_docstring_text(file_name or download_name(spec, ".py"))}` (add `--epochs N` to change the epochs).
        It needs keras (with TensorFlow){needed}.
        `--split-file split.json` writes which images it trained, validated and tested on.
        """
        '''
    )
    return "\n".join(
        [
            header,
            "\n".join(imports),
            "",
            "",
            split_source(with_subset=data.subset is not None),
            "",
            "",
            loading,
            "",
            "",
            model,
            "",
            "",
            training,
        ]
    )


def _docstring_text(text: str) -> str:
    """`text` safe inside the script's docstring: no backslash escapes, no closing quotes."""
    return text.replace("\\", "/").replace('"""', "'''")


def file_stem(text: str, limit: int = 40) -> str:
    """`text` made safe as a file name stem: letters, digits, "-" and "_" kept, anything else "_",
    no "_" at either end, at most `limit` characters ("a/b: c" gives "a_b__c"); empty if nothing is left."""
    safe = "".join(char if char.isalnum() or char in "-_" else "_" for char in text).strip("_")
    return safe[:limit]


def download_name(spec: ModelSpec, extension: str) -> str:
    """The name of a download of the model's script or JSON: its name made safe plus `extension`
    (".py", ".json"), "model" when nothing of its name is safe."""
    return f"{file_stem(spec.name) or 'model'}{extension}"
