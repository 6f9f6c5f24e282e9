"""What a user takes away from a run: the model, a TFLite file, the script, metrics, a run card,
a zip bundle of them all, and where its TensorBoard logs are (the worker writes them live).

Reads run data only through the store. Keras and TensorFlow are imported only by the export that
needs them (TFLite).
"""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path
from typing import Any

from cnnlab.model import codegen, shapes
from cnnlab.store.reader import RunReader
from cnnlab.store.records import RunRecord
from cnnlab.trained import calibration as calibrating
from cnnlab.trained import checkpoints, model_files, prediction

TENSORBOARD_FOLDER = "tensorboard"
TFLITE_NAMES = {False: "model.tflite", True: "model_quantized.tflite"}


def model_checkpoint(store: RunReader, run: RunRecord) -> checkpoints.Checkpoint:
    """The run's best checkpoint, else its latest; RunError (a CheckpointError) if it has no model yet."""
    saved = checkpoints.models(store, run.id)
    if not saved:
        raise checkpoints.CheckpointError(
            f"Run {run.id} has no saved model yet (status {run.status}); wait for its first epoch."
        )
    return saved[0]


def model_file(
    run: RunRecord, checkpoint: checkpoints.Checkpoint, calibration: calibrating.Calibration | None = None
) -> bytes:
    """The `.keras` file of a run's checkpoint as CNN Lab hands it out: carrying what the run was
    trained on (`prediction.run_info`) and its out-of-distribution calibration (`calibration`, else
    the one kept beside the checkpoint if it was measured), so the file uploaded to Predict prepares
    and flags images exactly as the run does."""
    carried = calibration if calibration is not None else calibrating.kept(checkpoint.path)
    return model_files.with_training_data(checkpoint.path.read_bytes(), prediction.run_info(run), carried)


def model_bytes(store: RunReader, run: RunRecord) -> bytes:
    """The `.keras` file (`model_file`) of the run's best (or latest) checkpoint; RunError if there is none yet."""
    return model_file(run, model_checkpoint(store, run))


def training_script(run: RunRecord, file_name: str | None = None) -> str:
    """The runnable Keras script that trains this run's model with its settings and data; its
    docstring runs it as `file_name` (default: the download's name, `file_stem(run)` + ".py")."""
    return codegen.script(run.model_spec(), run.training(), run.data(), file_name or f"{file_stem(run)}.py")


def metrics_csv(store: RunReader, run: RunRecord) -> str:
    """The run's epoch metrics as CSV text."""
    return store.epoch_metrics(run.id).to_csv(index=False)


def run_card(store: RunReader, run: RunRecord) -> dict[str, Any]:
    """A JSON-ready description of the run: what was trained on what, how, and how well."""
    analysis = shapes.analyse(run.model_spec())
    best = checkpoints.best_epoch(store, run.id)
    best_validation = None
    if best is not None and best.monitor == "val_accuracy" and best.value is not None:
        best_validation = {"epoch": best.epoch, "val_accuracy": best.value}
    return {
        "id": run.id,
        "name": run.name,
        "status": run.status,
        "reason": run.reason,
        "created_at": run.created_at,
        "started_at": run.started_at,
        "ended_at": run.ended_at,
        "parent": {"id": run.parent_id, "epoch": run.parent_epoch} if run.parent_id else None,
        "model": run.spec,
        "parameters": {"total": analysis.total_parameters, "trainable": analysis.trainable_parameters},
        "data_settings": run.data_settings,
        "training_settings": run.training_settings,
        "dataset_summary": run.dataset_summary,
        "epochs_trained": run.last_epoch,
        "best_validation": best_validation,
        "device": (run.results or {}).get("device"),
        "results": run.results,
    }


def tflite_bytes(store: RunReader, run: RunRecord, quantize: bool = False) -> bytes:
    """The run's best model converted to TensorFlow Lite (augmentation layers are inactive there).

    With `quantize`, weights are stored as 8-bit integers (dynamic-range quantization): about four
    times smaller, for phones and small devices, at a small cost in accuracy.
    """
    return tflite_files(store, run, quantized=(quantize,))[TFLITE_NAMES[quantize]]


def tflite_files(
    store: RunReader, run: RunRecord, quantized: tuple[bool, ...] = (False, True)
) -> dict[str, bytes]:
    """The run's best model loaded once and converted to TensorFlow Lite, plain and/or quantized,
    by file name (see `tflite_bytes`)."""
    import tensorflow as tf

    model = checkpoints.load(model_checkpoint(store, run))
    files = {}
    for quantize in quantized:
        converter = tf.lite.TFLiteConverter.from_keras_model(model)
        if quantize:
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
        files[TFLITE_NAMES[quantize]] = converter.convert()
    return files


def bundle(
    store: RunReader, run: RunRecord, include_tflite: bool = True, tflite: dict[str, bytes] | None = None
) -> bytes:
    """A zip of the model, the script, the metrics, the run card and the TFLite models (converted
    here unless `tflite`, the result of `tflite_files`, is given)."""
    buffer = io.BytesIO()
    stem = file_stem(run)
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(f"{stem}/model.keras", model_bytes(store, run))
        archive.writestr(f"{stem}/train.py", training_script(run, "train.py"))
        archive.writestr(f"{stem}/metrics.csv", metrics_csv(store, run))
        archive.writestr(f"{stem}/run_card.json", json.dumps(run_card(store, run), indent=2, default=str))
        if include_tflite:
            for name, content in (tflite or tflite_files(store, run)).items():
                archive.writestr(f"{stem}/{name}", content)
    return buffer.getvalue()


def file_stem(run: RunRecord) -> str:
    """A safe file name stem for downloads of this run: its model's name and the run's id
    ("digits_default_mb2k4x1zq7f3a"), whatever the run was called."""
    name = codegen.file_stem(str(run.spec.get("name") or ""))
    return f"{name}_{run.id}" if name else run.id


def tensorboard_folder(store: RunReader, run_id: str) -> Path:
    """The run's TensorBoard log folder, `runs/<run id>/tensorboard/`, which the worker's
    `keras.callbacks.TensorBoard` fills during the fit (`cnnlab.runs.worker.tensorboard_logs`).

    `tensorboard --logdir $CNNLAB_HOME/runs` shows every run, named by its id.
    """
    return store.run_folder(run_id) / TENSORBOARD_FOLDER


def has_tensorboard_logs(store: RunReader, run_id: str) -> bool:
    """True when the run's TensorBoard folder holds an event file (runs trained before the logs were
    written live, or stopped before their first whole epoch, have none)."""
    return any(tensorboard_folder(store, run_id).glob("*/events.out.tfevents.*"))
