"""The Model page's feedback where the learner looks (AppTest): an import's result under its button,
the imported model's own name, where "Add layer" puts the layer, and "Undo remove"."""

from __future__ import annotations

import json

from streamlit.testing.v1 import AppTest

from cnnlab.model import catalogue, presets
from cnnlab.plain_text import as_text
from cnnlab.specs import LayerSpec
from cnnlab.ui.pages.model import layer_placement
from cnnlab.ui.session import state
from tests.app_pages import no_problems, open_page
from tests.test_pages import url_setup


def _layers(app: AppTest) -> list[LayerSpec]:
    return list(url_setup(app).model.layers)


def _import(app: AppTest, model: dict[str, object]) -> None:
    app.text_area(key="import_json").input(json.dumps(model))
    app.button(key="import_button").click().run()


def test_an_import_says_its_result_under_its_button_and_the_model_takes_its_own_name() -> None:
    app = open_page("model").run()
    spec = presets.get("mnist_minimal").spec.to_dict()
    spec["layers"].insert(1, {"type": "Lambda", "function": "x * 2"})
    spec["name"] = "my *own* net"
    _import(app, spec)
    assert not app.exception
    json_tab = app.tabs[1]
    warnings = [element.value for element in json_tab.warning]
    assert len(warnings) == 1 and "Layer 2 was left out" in warnings[0] and as_text("'Lambda'") in warnings[0]
    assert warnings[0].startswith("Imported `my *own* net`: 6 layers.")  # Its name as text, in a code span.
    assert not [button for button in app.button if button.key == "dismiss_setup_notes"]  # Not at the top.
    assert url_setup(app).model.name == "my *own* net"

    clean = presets.get("digits_default").spec.to_dict()
    _import(app, clean)
    assert [element.value for element in app.tabs[1].success] == ["Imported `digits_default`: 8 layers."]
    assert not app.warning

    # A model without a name does not keep the name of the model it replaces.
    del clean["name"]
    _import(app, {**clean, "layers": clean["layers"][2:]})  # Another model: the pooling layer onwards.
    no_problems(app)
    assert url_setup(app).model.name == state.IMPORTED_NAME


def test_add_layer_says_where_and_goes_around_the_open_layer_and_remove_can_be_undone() -> None:
    app = open_page("model").run()
    start = _layers(app)
    # A layer edited is the open one: the second conv layer, given 48 filters.
    filters = [box.key for box in app.number_input if box.key and box.key.endswith("_filters")]
    app.number_input(key=filters[1]).set_value(48).run()
    app.selectbox(key="add_layer_type").set_value("BatchNormalization")
    app.run()
    where = app.selectbox(key="add_layer_where")
    assert where.value.startswith("Where it fits (as layer 8)")
    assert any(
        "The new BatchNormalization becomes layer 8, between 7. Dropout" in c.value for c in app.caption
    )
    after_open = next(option for option in where.options if option.startswith("After the open layer (2."))
    where.set_value(after_open).run()
    assert any("becomes layer 3, between 2. Conv2D" in caption.value for caption in app.caption)
    app.button(key="add_layer").click().run()
    no_problems(app)
    layers = _layers(app)
    assert [layer.type for layer in layers] == [layer.type for layer in start[:2]] + [
        "BatchNormalization"
    ] + [layer.type for layer in start[2:]]

    before_open = next(
        option
        for option in app.selectbox(key="add_layer_where").options
        if option.startswith("Before the open")
    )
    assert "3. BatchNormalization" in before_open  # The added layer is the open one now.

    # Remove can be undone: the layer comes back at its place.
    start = _layers(app)
    remove = [button.key for button in app.button if button.key and button.key.startswith("remove_")]
    pooling = [layer.type for layer in start].index("MaxPooling2D")
    app.button(key=remove[pooling]).click().run()
    assert _layers(app) == start[:pooling] + start[pooling + 1 :]
    assert any(caption.value == f"Removed layer {pooling + 1}, MaxPooling2D 2x2." for caption in app.caption)
    app.button(key="undo_remove").click().run()
    no_problems(app)
    assert _layers(app) == start
    assert not [button for button in app.button if button.key == "undo_remove"]
    # The undo is offered only while the layers are as the removal left them.
    app.button(key=remove[pooling]).click().run()
    app.selectbox(key="add_layer_type").set_value("Dropout")
    app.button(key="add_layer").click().run()
    assert not [button for button in app.button if button.key == "undo_remove"]


def test_insertion_choices_offer_every_place_once_the_open_layer_first() -> None:
    layers = list(presets.get("digits_default").spec.layers)
    choices = layer_placement.insertion_choices(layers, "Conv2D", open_position=0)
    assert list(choices.values())[:3] == [4, 0, 1]  # Where a conv fits (before Flatten), then around layer 1.
    assert sorted(set(choices.values())) == list(range(len(layers) + 1))
    assert list(choices)[-1] == f"At the end, after 8. {catalogue.describe(layers[-1])}"
    assert next(iter(layer_placement.insertion_choices(layers, "Dense", None).values())) == 7
