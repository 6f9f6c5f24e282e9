"""AppTest of the Home, Data, Model and Train pages, against a real store in a temporary home."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from made_runs import make_run
from streamlit.testing.v1 import AppTest

from cnnlab import share
from cnnlab.model import build, presets, shapes
from cnnlab.plain_text import as_text
from cnnlab.specs import AugmentationSettings, DataSettings, ModelSpec, TrainingSettings
from cnnlab.store.records import RunRecord
from cnnlab.store.run_store import Store
from cnnlab.store.statuses import Status
from cnnlab.ui.pages.train import live_run
from cnnlab.ui.session import setup_entry
from tests.app_pages import column_formats, no_problems, open_page, read_back

TIMEOUT = 60

# Every test runs the app against an empty store in a temporary CNNLAB_HOME.
pytestmark = pytest.mark.usefixtures("cnnlab_home")


def page(name: str) -> AppTest:
    """The app, through its navigation, opened on page `name` (run it with `.run()`)."""
    return open_page(name, timeout=TIMEOUT)


def url_setup(app: AppTest) -> share.Setup:
    """The setup the page put in its URL (older AppTest, such as 1.55's, holds each parameter as a list)."""
    token = app.query_params["setup"]
    return share.decode(token[-1] if isinstance(token, list) else token)


def keras_parameters(spec: ModelSpec) -> str:
    """How many parameters Keras gives the model of `spec`, written as the page's metric writes it."""
    return f"{build.build_model(spec).count_params():,}"


def new_run(store: Store, name: str, epochs: int = 10, status: Status = Status.QUEUED) -> RunRecord:
    """A run of the default digits model recorded in `store`, in `status`."""
    return make_run(store, epochs=epochs, name=name, status=status)


def test_home_offers_one_click_training_and_lists_runs(home_store: Store) -> None:
    earlier = new_run(home_store, "earlier run", status=Status.COMPLETED)
    home_store.set_results(earlier.id, {"best_val_accuracy": 0.9956})
    app = page("home").run()
    no_problems(app)
    assert app.button(key="quick_train").label == "Train a digits classifier"
    table = app.dataframe[0].value
    assert "earlier run" in table["name"].tolist()
    # Best validation accuracy is a number the browser writes as a percentage (99.56%), not "1".
    assert table.loc[table["name"] == "earlier run", "best val. accuracy"].tolist() == [0.9956]
    assert column_formats(app.dataframe[0])["best val. accuracy"] == "percent"
    # The main columns fit a 1280-pixel screen; ids, parents and devices wait behind the toggle.
    shown = list(app.dataframe[0].proto.column_order)
    assert "best val. accuracy" in shown and "duration" in shown and "id" not in shown
    # Home says where training runs: on the server, not "in your browser".
    text = " ".join(markdown.value for markdown in app.markdown)
    assert "the training runs on the server that hosts CNN Lab" in text
    assert "Everything runs here, in your browser" not in text
    app.toggle(key="recent_runs_details").set_value(True).run()
    assert {"id", "parent", "device"} <= set(app.dataframe[0].proto.column_order)


def test_data_page_shows_counts_and_follows_the_dataset_choice() -> None:
    app = page("data").run()
    no_problems(app)
    values = [metric.value for metric in app.metric]
    assert values[:3] == ["1,797", "10", "8×8×1"]
    summary = next(frame for frame in app.dataframe if "total" in frame.value.columns)
    assert int(summary.value["total"].sum()) == 1797
    assert set(column_formats(summary).values()) == {"localized"}  # Counts, as every table writes them.
    # Augmentation's rotation is in degrees, as the shapes' is: the digits' default 0.04 of a turn reads
    # 14.4 degrees, and is kept exactly while the slider is not moved.
    labels = [slider.label for slider in app.slider]
    assert "Rotation (degrees)" in labels and not [label for label in labels if "fraction of a turn" in label]
    assert app.slider(key="augment_rotation_degrees").value == pytest.approx(14.4)
    assert url_setup(app).training.augmentation.rotation == 0.04
    app.slider(key="augment_rotation_degrees").set_value(36.0).run()
    assert url_setup(app).training.augmentation.rotation == pytest.approx(0.1)
    app.selectbox(key="image_size").set_value(16).run()
    no_problems(app)
    assert app.metric[2].value == "16×16×1"
    assert url_setup(app).data.image_size == 16
    app.selectbox(key="dataset_name").set_value("shapes").run()
    no_problems(app)
    assert app.metric[1].value == "5"


def test_data_page_augments_its_preview_once_per_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    """A rerun draws the cached preview (Keras is not run again); a changed setting augments again."""
    from cnnlab.ui.cache import data_cache

    calls: list[float] = []
    augmented_examples = build.augmented_examples

    def counted(images: np.ndarray, augmentation: AugmentationSettings, **keywords: int) -> np.ndarray:
        calls.append(augmentation.rotation)
        return augmented_examples(images, augmentation, **keywords)

    monkeypatch.setattr(build, "augmented_examples", counted)
    data_cache._augmentation_preview.clear()
    app = page("data").run()
    no_problems(app)
    app.run()
    assert calls == [0.04]
    assert app.get("plotly_chart")  # The preview among the page's charts.
    app.slider(key="augment_rotation_degrees").set_value(36.0).run()
    no_problems(app)
    assert calls == [0.04, pytest.approx(0.1)]
    # What the cache holds is what Keras makes of the seeded images.
    settings, augmentation = url_setup(app).data, url_setup(app).training.augmentation
    examples, previews = data_cache.augmentation_preview(settings, augmentation)
    assert previews.shape == (data_cache.PREVIEW_IMAGES, data_cache.PREVIEW_COPIES, *examples.shape[1:])
    expected = augmented_examples(
        examples, augmentation, copies=data_cache.PREVIEW_COPIES, seed=settings.seed
    )
    np.testing.assert_allclose(previews, expected)


def test_data_page_explains_a_missing_standard_set(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    monkeypatch.setenv("CNNLAB_OFFLINE", "1")
    app = page("data").run()
    app.selectbox(key="dataset_name").set_value("mnist").run()
    assert not app.exception
    messages = " ".join(element.value for element in [*app.error, *app.warning])
    assert as_text("mnist.npz") in messages  # Shown as text: it may name the folders of a zip.


def test_model_page_updates_totals_and_names_the_broken_layer() -> None:
    app = page("model").run()
    no_problems(app)
    spec = url_setup(app).model
    assert app.metric[0].value == keras_parameters(spec)
    app.number_input(key=next(key for key in _keys(app) if key.endswith("_filters"))).set_value(16).run()
    first_conv = next(position for position, layer in enumerate(spec.layers) if layer.type == "Conv2D")
    narrower = [*spec.layers]
    narrower[first_conv] = narrower[first_conv].with_params(filters=16)
    assert app.metric[0].value == keras_parameters(spec.replace_layers(narrower))
    kernel_key = next(key for key in _keys(app) if key.endswith("_kernel_size"))
    app.number_input(key=kernel_key).set_value(9).run()
    assert not app.exception
    assert any("Layer 1 (Conv2D 9x9" in read_back(element.value) for element in app.error)
    assert "Fix the problems above" in app.info[0].value


def test_model_page_loads_a_preset_and_imports_json() -> None:
    app = page("model").run()
    app.selectbox(key="preset_name").set_value("cifar10")
    app.checkbox(key="preset_fit").uncheck()
    app.button(key="load_preset").click().run()
    assert not app.exception
    assert app.metric[0].value == keras_parameters(presets.get("cifar10").spec)
    assert "32x32x3 but the dataset gives 8x8x1" in read_back(app.error[0].value)
    assert url_setup(app).training.epochs == 10  # the CIFAR-10 article's
    app.text_area(key="import_json").input(presets.get("mnist_minimal").spec.to_json())
    app.button(key="import_button").click().run()
    assert app.metric[0].value == keras_parameters(presets.get("mnist_minimal").spec)
    app.text_area(key="import_json").input("{broken")
    app.button(key="import_button").click().run()
    assert any("not valid JSON" in read_back(element.value) for element in app.error)


def test_a_shared_setup_link_opens_the_same_setup() -> None:
    model = presets.adapt(presets.get("lenet5").spec, (16, 16, 1), 10)
    setup = share.Setup(DataSettings(image_size=16), model, TrainingSettings(epochs=3))
    app = page("model")
    app.query_params["setup"] = share.encode(setup)
    app.run()
    no_problems(app)
    assert "16×16×1" in app.caption[0].value
    assert app.metric[0].value == f"{shapes.analyse(setup.model).total_parameters:,}"
    assert setup.model.layers[0].get("kernel_size") == 5


def _keys(app: AppTest) -> list[str]:
    return [widget.key for widget in app.number_input if widget.key]


def _recorded_run(store: Store) -> str:
    """A run with real store records: epoch and batch metrics and every snapshot kind."""
    # Recorded as starting, not queued: a server's scheduler watching the same store (the browser
    # tests') would otherwise claim the queued run while this sets it starting.
    run = new_run(store, "recorded run", epochs=4, status=Status.STARTING)
    store.set_status(run.id, Status.RUNNING)
    generator = np.random.default_rng(0)
    panel: dict[str, np.ndarray] = {
        "images": (generator.random((12, 8, 8, 1)) * 255).astype(np.uint8),
        "labels": np.arange(12) % 10,
        "indices": np.arange(12),
        "class_names": np.array([str(digit) for digit in range(10)]),
        "probes": np.zeros((0, 8, 8, 1), np.uint8),
    }
    store.write_snapshot(run.id, 0, "panel", panel)
    for epoch in (1, 2):
        batch = {"epoch": epoch, "batch": 0, "step": epoch * 10, "loss": 1.0 / epoch, "accuracy": 0.5}
        store.add_batch_metrics(run.id, [{**batch, "learning_rate": 0.001, "time": 0.0}])
        store.add_epoch_metrics(
            run.id,
            {
                "epoch": epoch,
                "loss": 1.0 / epoch,
                "accuracy": 0.5 + epoch / 10,
                "val_loss": 1.2 / epoch,
                "val_accuracy": 0.5,
                "learning_rate": 0.001,
                "epoch_seconds": 1.0,
            },
        )
        store.write_snapshot(run.id, epoch, "kernels", {"conv2d_1": generator.normal(size=(3, 3, 1, 32))})
        store.write_snapshot(run.id, epoch, "feature_maps", {"conv2d_1": generator.random((12, 8, 8, 16))})
        store.write_snapshot(run.id, epoch, "predictions", {"panel": generator.dirichlet(np.ones(10), 12)})
        confusion = {"matrix": np.eye(10, dtype=np.int64) * 5, "class_names": np.array(list("0123456789"))}
        store.write_snapshot(run.id, epoch, "confusion", confusion)
    store.set_status(run.id, Status.STOPPED, reason="Stopped by the user.")
    return run.id


def test_train_page_shows_a_recorded_run_from_the_url(home_store: Store) -> None:
    run_id = _recorded_run(home_store)
    app = page("train")
    app.query_params["run"] = run_id
    app.run()
    no_problems(app)
    assert any(header.value.endswith("recorded run") for header in app.subheader)
    assert any("Stopped after epoch 2" in element.value for element in app.info)
    assert app.button(key="stop_run").disabled
    # Loss, accuracy, learning rate, kernels, feature maps, confusion matrix and predictions: each tab
    # draws its own charts, and only the open tab is drawn.
    charts = {"Curves": ["loss_curve", "accuracy_curve", "learning_rate_curve"]}
    charts["Filters and feature maps"] = ["kernels_figure", "maps_figure"]
    charts["Confusion and predictions"] = ["confusion_figure", "predictions_figure"]
    for tab, keys in charts.items():
        app.session_state["live_tabs"] = tab
        app.run()
        assert [chart.key for chart in app.get("plotly_chart")] == keys


def test_train_page_without_a_run_invites_to_start() -> None:
    app = page("train").run()
    no_problems(app)
    assert not app.button(key="start_training").disabled
    assert "Start a run" in app.info[-1].value
    # The augmentation in words, not as a Python dict.
    captions = [caption.value for caption in app.caption]
    line = next(caption for caption in captions if caption.startswith("Augmentation (set on the Data page)"))
    assert "random turns up to 14.4° either way, shifts up to 10% of the image and zooms up to 10%" in line
    assert "{" not in line and "'rotation'" not in line


def test_train_page_refuses_to_start_a_broken_model() -> None:
    setup = share.Setup(DataSettings(), presets.get("mnist_minimal").spec, TrainingSettings())
    app = page("train")
    app.query_params["setup"] = share.encode(setup)
    app.run()
    assert app.button(key="start_training").disabled
    assert any(
        "28x28x1" in read_back(element.value) and "8x8x1" in read_back(element.value) for element in app.error
    )


def test_layer_editor_adds_moves_duplicates_and_removes_layers() -> None:
    app = page("model").run()

    def layer_types() -> list[str]:
        return [layer.type for layer in url_setup(app).model.layers]

    start = layer_types()
    app.selectbox(key="add_layer_type").set_value("BatchNormalization")
    app.button(key="add_layer").click().run()
    after_add = layer_types()
    assert len(after_add) == len(start) + 1
    assert after_add[-2] == "BatchNormalization"  # before the output layer
    remove_keys = [button.key for button in app.button if button.key and button.key.startswith("remove_")]
    up_keys = [button.key for button in app.button if button.key and button.key.startswith("up_")]
    app.button(key=up_keys[1]).click().run()  # move the second layer up
    assert layer_types()[:2] == [after_add[1], after_add[0]]
    duplicate_keys = [
        button.key for button in app.button if button.key and button.key.startswith("duplicate_")
    ]
    app.button(key=duplicate_keys[0]).click().run()
    assert layer_types()[:2] == [after_add[1], after_add[1]]
    before_remove = layer_types()
    app.button(key=remove_keys[-1]).click().run()  # remove the output layer: the model is now invalid
    assert layer_types() == before_remove[:-1]
    assert not app.exception
    assert any("but the dataset has 10 classes" in read_back(element.value) for element in app.error)


def test_a_link_cannot_point_the_server_at_its_own_folders(tmp_path: Path) -> None:
    secret = tmp_path / "server_folder"
    for name in ("a", "b"):
        (secret / name).mkdir(parents=True)
    setup = share.Setup(
        DataSettings(dataset=str(secret)), presets.get("digits_default").spec, TrainingSettings()
    )
    app = page("data")
    app.query_params["setup"] = share.encode(setup)
    app.run()
    assert not app.exception
    assert any("not one you can open here" in element.value for element in app.warning)
    assert not any(str(tmp_path) in element.value for element in app.warning)  # Named, not its folder.
    assert app.metric[0].value == "1,797"
    assert url_setup(app).data.dataset == "digits"


@pytest.mark.parametrize(
    ("status", "reason", "hint", "expected"),
    [
        (
            Status.DIVERGED,
            "The loss became nan at epoch 1, batch 3: training diverged.",
            "Lower the learning rate (it was 5; try 0.5).",
            "Diverged: CNN Lab stopped this run. The loss became nan",
        ),
        (
            Status.FAILED,
            "The worker process died (killed by SIGKILL).",
            None,
            "Failed: The worker process died",
        ),
    ],
)
def test_train_page_explains_how_a_run_ended(
    home_store: Store, status: Status, reason: str, hint: str | None, expected: str
) -> None:
    run = new_run(home_store, "troubled run")
    home_store.set_status(run.id, Status.STARTING)
    home_store.set_status(run.id, Status.RUNNING)
    home_store.set_status(run.id, status, reason=reason, hint=hint, traceback="Traceback: details")
    app = page("train")
    app.query_params["run"] = run.id
    app.run()
    assert not app.exception
    messages = [read_back(element.value) for element in app.error]  # The reason and hint are escaped.
    assert any(message.startswith(expected) for message in messages), messages
    if hint:
        assert any(hint in message for message in messages)
    assert app.button(key="stop_run").disabled


def test_layer_widgets_keep_to_the_catalogue_ranges_but_show_bad_imports() -> None:
    app = page("model").run()
    filters = next(widget for widget in app.number_input if widget.key and widget.key.endswith("_filters"))
    assert (filters.min, filters.max) == (1, 2048)
    rate = next(widget for widget in app.number_input if widget.key and widget.key.endswith("_rate"))
    assert rate.min == 0.0 and rate.max == pytest.approx(0.99)
    bad = presets.get("digits_default").spec
    bad = bad.replace_layers([bad.layers[0].with_params(filters=0, kernel_size=20), *bad.layers[1:]])
    app.text_area(key="import_json").input(bad.to_json())
    app.button(key="import_button").click().run()
    assert not app.exception
    assert any("filters=0" in read_back(element.value) for element in app.error)
    assert any("kernel_size=20" in read_back(element.value) for element in app.error)
    imported = url_setup(app).model.layers[0].params
    assert (imported["filters"], imported["kernel_size"]) == (0, 20)


def test_the_live_view_has_an_icon_for_every_status() -> None:
    assert set(live_run.STATUS_ICONS) == set(Status)


def test_importing_a_model_with_no_usable_layer_is_refused_and_changes_nothing() -> None:
    app = page("model").run()
    before = url_setup(app)
    app.text_area(key="import_json").input('{"input_shape":[8,8,1],"layers":[{"type":"Conv3D","filters":3}]}')
    app.button(key="import_button").click().run()
    assert not app.exception
    assert any(
        "'Conv3D'" in read_back(element.value) and "Nothing was changed" in read_back(element.value)
        for element in app.error
    )
    assert url_setup(app) == before
    assert len(app.tabs) == 2  # the code and JSON tabs are still there


def test_importing_a_model_keeps_its_usable_layers_and_names_the_rest() -> None:
    app = page("model").run()
    spec = presets.get("digits_default").spec.to_dict()
    spec["layers"].insert(1, {"type": "Lambda", "function": "x * 2"})
    app.text_area(key="import_json").input(json.dumps(spec))
    app.button(key="import_button").click().run()
    assert not app.exception
    assert url_setup(app).model == presets.get("digits_default").spec
    # Said in the JSON tab, under the Import button; gone once the model is changed again.
    assert any(
        as_text("Layer 2 was left out") in read_back(element.value) and as_text("'Lambda'") in element.value
        for element in app.tabs[1].warning
    )
    app.selectbox(key="add_layer_type").set_value("BatchNormalization")
    app.button(key="add_layer").click().run()
    assert not any(as_text("'Lambda'") in element.value for element in app.warning)


def test_a_link_with_settings_beyond_the_widgets_opens_the_train_page_with_them_in_range() -> None:
    preset = presets.get("digits_default")
    payload = share.to_payload(share.Setup(DataSettings(), preset.spec, TrainingSettings()))
    # Beyond the ranges the specs refuse, so written into the link's JSON by hand.
    payload["training"].update(epochs=501, batch_size=100_000)
    app = page("train")
    app.query_params["setup"] = share.pack(payload)
    app.run()
    assert not app.exception
    assert app.number_input(key="epochs").value == 500
    assert app.select_slider(key="batch_size").value == 512
    notes = " ".join(element.value for element in app.warning)
    assert (
        as_text("epochs=501") in notes and as_text("batch_size=100000") in notes
    )  # Notes are shown as text.
    assert (url_setup(app).training.epochs, url_setup(app).training.batch_size) == (500, 512)


def test_the_data_widgets_take_the_ranges_links_are_brought_into() -> None:
    app = page("data").run()
    app.selectbox(key="dataset_name").set_value("shapes").run()
    ranges = setup_entry.DATA_RANGES
    image_size = app.number_input(key="image_size_number")
    assert image_size.max == ranges["image_size"][1]
    assert app.number_input(key="subset").max == ranges["subset"][1]
    assert app.number_input(key="data_seed").max == ranges["seed"][1]
    for key, name in (("validation", "validation_fraction"), ("test", "test_fraction")):
        assert (app.slider(key=key).min, app.slider(key=key).max) == ranges[name]
