"""Setups entering the app: what is refused or brought into range, what is kept, and the notes saying so."""

from __future__ import annotations

import base64
import dataclasses
import json
import zlib
from typing import Any

import pytest

from cnnlab import share
from cnnlab.errors import SpecError
from cnnlab.model import presets
from cnnlab.setting_ranges import TRAINING_RANGES
from cnnlab.specs import DataSettings, TrainingSettings
from cnnlab.ui.session import setup_entry
from cnnlab.ui.session.state import default_setup


def token_of(payload: Any) -> str:
    return base64.urlsafe_b64encode(zlib.compress(json.dumps(payload).encode())).decode().rstrip("=")


def payload_of(setup: share.Setup) -> dict[str, Any]:
    return {
        "data": setup.data.to_dict(),
        "model": setup.model.to_dict(),
        "training": setup.training.to_dict(),
    }


def test_an_unknown_layer_is_left_out_with_a_note_and_the_other_layers_kept() -> None:
    default = default_setup()
    payload = payload_of(default)
    payload["model"]["layers"].insert(1, {"type": "Conv3D", "filters": 3})
    admitted = setup_entry.read_link(token_of(payload), default)
    assert admitted.setup.model.layers == default.model.layers
    assert any("Layer 2" in note and "'Conv3D'" in note and "Conv2D" in note for note in admitted.notes)


def test_out_of_range_training_settings_are_clamped_to_the_widgets_and_said() -> None:
    default = default_setup()
    payload = payload_of(default)
    payload["training"].update(epochs=501, batch_size=100_000, learning_rate=1e-9, seed=2**32 - 1)
    admitted = setup_entry.read_link(token_of(payload), default)
    training = admitted.setup.training
    assert (training.epochs, training.batch_size) == (500, 512)
    assert training.learning_rate == TRAINING_RANGES["learning_rate"].minimum
    assert training.seed == 2**32 - 1 == TRAINING_RANGES["seed"].maximum  # The largest seed is in range.
    assert any("learning_rate=1e-09" in note and "1e-07" in note for note in admitted.notes)
    assert any("epochs=501" in note and "500" in note for note in admitted.notes)
    assert any("batch_size=100000" in note and "512" in note for note in admitted.notes)
    # Everything else is kept as the link had it.
    assert training.optimizer == default.training.optimizer
    assert admitted.setup.model == default.model


def test_a_wrong_value_keeps_the_default_for_that_field_only() -> None:
    default = default_setup()
    payload = payload_of(default)
    payload["training"].update(epochs="ten", optimizer="sgd")
    payload["data"].update(image_size=16, validation_fraction=[1])
    admitted = setup_entry.read_link(token_of(payload), default)
    assert admitted.setup.training.epochs == default.training.epochs
    assert admitted.setup.training.optimizer == "sgd"
    assert admitted.setup.data.image_size == 16
    assert admitted.setup.data.validation_fraction == DataSettings().validation_fraction
    assert any("'ten'" in note for note in admitted.notes)


def test_missing_sections_and_unknown_keys_are_named() -> None:
    default = default_setup()
    payload = payload_of(default)
    del payload["training"]
    payload["model"]["colour"] = "blue"
    admitted = setup_entry.read_link(token_of(payload), default)
    assert admitted.setup.training == default.training
    assert any("no training settings" in note for note in admitted.notes)
    assert any("'colour'" in note for note in admitted.notes)


@pytest.mark.parametrize("token", ["", "not base64!", token_of([1, 2]), token_of("text")])
def test_an_unreadable_link_is_refused_as_a_whole(token: str) -> None:
    with pytest.raises(SpecError, match="link"):
        setup_entry.read_link(token, default_setup())


def test_layer_parameters_of_the_wrong_kind_are_left_out_but_bad_numbers_are_kept() -> None:
    layer, notes = setup_entry.read_layer(
        {"type": "Conv2D", "filters": 0, "kernel_size": "big", "activation": "sparkle", "colour": 1}, 3
    )
    assert layer is not None
    # filters=0 is a whole number the page shows with its own message; the rest cannot be shown.
    assert dict(layer.params) == {"filters": 0}
    assert len(notes) == 3 and all(note.startswith("Layer 3 (Conv2D)") for note in notes)


def test_a_model_without_one_usable_layer_is_refused() -> None:
    with pytest.raises(SpecError, match=r"no layer CNN Lab can show.*Conv3D"):
        setup_entry.read_model(
            {"input_shape": [8, 8, 1], "layers": [{"type": "Conv3D", "filters": 3}]},
            default_setup().model,
        )


def test_a_huge_input_is_brought_into_the_input_row() -> None:
    model = dataclasses.replace(presets.get("digits_default").spec, input_shape=(5000, 8, 40))
    fitted, notes = setup_entry.fit_model(model)
    assert fitted.input_shape == (1024, 8, 16)
    assert len(notes) == 2


def test_the_digits_keep_to_their_sizes() -> None:
    data, notes = setup_entry.fit_data(DataSettings(image_size=20))
    assert data.image_size == 16 and "16" in notes[0]


def test_a_valid_setup_passes_unchanged() -> None:
    for preset in presets.PRESETS.values():
        setup = share.Setup(DataSettings(), preset.spec, TrainingSettings(**preset.training))
        admitted = setup_entry.read_link(share.encode(setup), default_setup())
        assert admitted == setup_entry.Admitted(setup), preset.name
