"""Layer health: the per-epoch record of how every layer is doing, and how to read it back.

The worker (`cnnlab.runs.worker.telemetry.Telemetry.layer_health`) writes one `layer_health` snapshot per
epoch holding:

- `layers`, `gradient_norm_log10`: every layer with trainable weights and the log10 of the norm
  of the loss's gradient with respect to its weights, measured on one fixed training batch (log10
  because snapshots keep floats as float16, which would round a vanishing 1e-9 to zero);
- `relu_layers`, `dead_share`: every ReLU layer and the share of its units (channels of a
  convolution, units of a dense layer) that never fire on the validation images (after the
  first epoch: the share is measured in the epoch's validation pass);
- `activations/<layer>` and `activations/<layer>.edges`: a histogram of each watched layer's
  outputs on the fixed panel of validation images.

The readers here turn those snapshots into tables for the figures (`cnnlab.figures.health`).
This module imports neither TensorFlow nor streamlit, so the server can use it.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from cnnlab.store.reader import RunReader

KIND = "layer_health"
ACTIVATIONS = "activations/"
HEALTH_COLUMNS = ("epoch", "layer", "gradient_norm", "dead_share")


def health_arrays(
    gradient_norms: dict[str, float],
    dead_shares: dict[str, float],
    activation_histograms: dict[str, tuple[np.ndarray, np.ndarray]],
) -> dict[str, np.ndarray]:
    """The `layer_health` snapshot arrays from per-layer figures (the format the readers expect)."""
    norms = np.array(list(gradient_norms.values()), dtype=np.float64)
    arrays: dict[str, np.ndarray] = {
        "layers": np.array(list(gradient_norms), dtype=str),
        "gradient_norm_log10": np.log10(np.maximum(norms, 1e-30)).astype(np.float32),
    }
    if dead_shares:
        arrays["relu_layers"] = np.array(list(dead_shares), dtype=str)
        arrays["dead_share"] = np.array(list(dead_shares.values()), dtype=np.float32)
    for name, (counts, edges) in activation_histograms.items():
        arrays[f"{ACTIVATIONS}{name}"] = counts.astype(np.int32)
        arrays[f"{ACTIVATIONS}{name}.edges"] = edges.astype(np.float32)
    return arrays


def layer_health(store: RunReader, run_id: str) -> pd.DataFrame:
    """One row per epoch and layer: `epoch`, `layer`, `gradient_norm`, `dead_share` (NaN when not a
    ReLU layer or not measured), in epoch order and the model's layer order. Empty before any snapshot."""
    rows: list[dict[str, object]] = []
    for epoch in store.snapshot_epochs(run_id, KIND):
        arrays = store.read_snapshot(run_id, epoch, KIND)
        norms = 10.0 ** np.asarray(arrays.get("gradient_norm_log10", np.zeros(0)), dtype=np.float64)
        dead = dict(
            zip(
                (str(name) for name in arrays.get("relu_layers", [])),
                (float(share) for share in arrays.get("dead_share", [])),
                strict=True,
            )
        )
        names = [str(name) for name in arrays.get("layers", [])]
        for name, norm in zip(names, norms, strict=True):
            rows.append(
                {
                    "epoch": epoch,
                    "layer": name,
                    "gradient_norm": float(norm),
                    "dead_share": dead.pop(name, np.nan),
                }
            )
        # ReLU layers without weights of their own (a `ReLU` or `Activation` layer).
        rows += [
            {"epoch": epoch, "layer": name, "gradient_norm": np.nan, "dead_share": share}
            for name, share in dead.items()
        ]
    return pd.DataFrame(rows, columns=list(HEALTH_COLUMNS))


def activation_histograms(
    store: RunReader, run_id: str, epoch: int
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Each watched layer's activation histogram at `epoch`: layer name to (counts, bin edges)."""
    arrays = store.read_snapshot(run_id, epoch, KIND)
    return {
        key[len(ACTIVATIONS) :]: (
            np.asarray(arrays[key]),
            np.asarray(arrays[f"{key}.edges"], dtype=np.float64),
        )
        for key in arrays
        if key.startswith(ACTIVATIONS) and not key.endswith(".edges")
    }


def weight_histograms(store: RunReader, run_id: str, epoch: int) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Each weight's histogram at `epoch` (the `histograms` snapshot): `<layer>/<weight>` to (counts, bin edges)."""
    arrays = store.read_snapshot(run_id, epoch, "histograms")
    return {
        key: (np.asarray(arrays[key]), np.asarray(arrays[f"{key}.edges"], dtype=np.float64))
        for key in arrays
        if not key.endswith(".edges") and f"{key}.edges" in arrays
    }
