"""The Train page's hyperparameter form: every field of `TrainingSettings`, with help text.

Each widget's minimum and maximum are the setting's range (`cnnlab.setting_ranges`), the same the
specs and the CLI refuse beyond.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import streamlit as st

from cnnlab.setting_ranges import BATCH_SIZES, TRAINING_RANGES
from cnnlab.specs import OPTIMIZERS, SCHEDULES, TrainingSettings
from cnnlab.ui.session import controls

HELP = {
    "optimizer": "How the weights are updated from the gradients. Adam adapts per weight and is a safe start; "
    "SGD with momentum can generalise better with a tuned learning rate.",
    "learning_rate": "The step size of each update: the single most important setting. Too high and the loss "
    "explodes (NaN); too low and training crawls.",
    "schedule": "How the learning rate changes over epochs: step halves it every few epochs, exponential decays "
    "it every epoch, cosine glides it to the minimum, plateau cuts it when validation loss stalls.",
    "batch_size": "Images per update. Small batches update more often but more noisily.",
    "epochs": "Passes over the training images.",
    "l2": "Weight decay on every Conv and Dense kernel: penalises large weights to reduce overfitting.",
    "early_stopping": "Stop when the monitored metric stops improving for `patience` epochs.",
    "seed": "The same seed, data and settings give the same result on the CPU.",
}


def training_form(current: TrainingSettings) -> TrainingSettings:
    """Draw the hyperparameter widgets and return the settings they describe."""
    columns = st.columns(4)
    optimizer = columns[0].selectbox(
        "Optimizer",
        OPTIMIZERS,
        OPTIMIZERS.index(current.optimizer),
        key="optimizer",
        disabled=controls.locked("optimizer"),
        format_func=lambda name: {"adam": "Adam", "adamw": "AdamW", "sgd": "SGD", "rmsprop": "RMSprop"}[name],
        help=HELP["optimizer"],
    )
    learning_rate = columns[1].number_input(
        "Learning rate",
        *TRAINING_RANGES["learning_rate"].bounds(),
        current.learning_rate,
        format="%g",
        step=0.0005,
        key="learning_rate",
        disabled=controls.locked("learning_rate"),
        help=HELP["learning_rate"],
    )
    batch_size = columns[2].select_slider(
        "Batch size",
        BATCH_SIZES,
        current.batch_size,
        key="batch_size",
        disabled=controls.locked("batch_size"),
        help=HELP["batch_size"],
    )
    epochs = columns[3].number_input(
        "Epochs",
        *TRAINING_RANGES["epochs"].bounds(),
        current.epochs,
        key="epochs",
        disabled=controls.locked("epochs"),
        help=HELP["epochs"],
    )
    changes: dict[str, Any] = {
        "optimizer": optimizer,
        "learning_rate": learning_rate,
        "batch_size": batch_size,
        "epochs": int(epochs),
    }
    with st.expander("Optimizer details, schedule, regularisation, early stopping and seed"):
        columns = st.columns(4)
        if optimizer == "sgd":
            changes["momentum"] = columns[0].slider(
                "Momentum",
                *TRAINING_RANGES["momentum"].bounds(),
                current.momentum,
                0.01,
                key="momentum",
                disabled=controls.locked("optimizer"),
            )
            changes["nesterov"] = columns[0].checkbox(
                "Nesterov", current.nesterov, key="nesterov", disabled=controls.locked("optimizer")
            )
        if optimizer == "adamw":
            changes["weight_decay"] = columns[0].number_input(
                "Weight decay",
                *TRAINING_RANGES["weight_decay"].bounds(),
                current.weight_decay,
                format="%g",
                key="weight_decay",
                disabled=controls.locked("optimizer"),
            )
        schedule = columns[1].selectbox(
            "Learning-rate schedule",
            SCHEDULES,
            SCHEDULES.index(current.schedule),
            key="schedule",
            disabled=controls.locked("learning_rate"),
            help=HELP["schedule"],
        )
        changes["schedule"] = schedule
        if schedule == "step":
            changes["schedule_step_epochs"] = int(
                columns[1].number_input(
                    "Every (epochs)",
                    *TRAINING_RANGES["schedule_step_epochs"].bounds(),
                    current.schedule_step_epochs,
                    key="step_epochs",
                    disabled=controls.locked("learning_rate"),
                )
            )
        if schedule in ("step", "exponential"):
            changes["schedule_decay_rate"] = columns[1].slider(
                "Multiply by",
                *TRAINING_RANGES["schedule_decay_rate"].bounds(),
                current.schedule_decay_rate,
                0.05,
                key="decay_rate",
                disabled=controls.locked("learning_rate"),
            )
        if schedule == "plateau":
            changes["plateau_factor"] = columns[1].slider(
                "Multiply by",
                *TRAINING_RANGES["plateau_factor"].bounds(),
                current.plateau_factor,
                0.05,
                key="plateau_factor",
                disabled=controls.locked("learning_rate"),
            )
            changes["plateau_patience"] = int(
                columns[1].number_input(
                    "After epochs without progress",
                    *TRAINING_RANGES["plateau_patience"].bounds(),
                    current.plateau_patience,
                    key="plateau_patience",
                    disabled=controls.locked("learning_rate"),
                )
            )
        changes["l2"] = columns[2].number_input(
            "L2 on every kernel",
            *TRAINING_RANGES["l2"].bounds(),
            current.l2,
            format="%g",
            step=0.0001,
            key="l2",
            disabled=controls.locked("regularisation"),
            help=HELP["l2"],
        )
        changes["seed"] = int(
            columns[2].number_input(
                "Seed",
                *TRAINING_RANGES["seed"].bounds(),
                current.seed,
                key="seed",
                disabled=controls.locked("training_seed"),
                help=HELP["seed"],
            )
        )
        changes["early_stopping"] = columns[3].checkbox(
            "Early stopping",
            current.early_stopping,
            key="early_stopping",
            disabled=controls.locked("early_stopping"),
            help=HELP["early_stopping"],
        )
        if changes["early_stopping"]:
            monitors = ["val_loss", "val_accuracy", "loss", "accuracy"]
            changes["early_stopping_monitor"] = columns[3].selectbox(
                "Monitor",
                monitors,
                monitors.index(current.early_stopping_monitor),
                key="monitor",
                disabled=controls.locked("early_stopping"),
            )
            changes["early_stopping_patience"] = int(
                columns[3].number_input(
                    "Patience (epochs)",
                    *TRAINING_RANGES["early_stopping_patience"].bounds(),
                    current.early_stopping_patience,
                    key="patience",
                    disabled=controls.locked("early_stopping"),
                )
            )
            changes["restore_best_weights"] = columns[3].checkbox(
                "Restore the best weights",
                current.restore_best_weights,
                key="restore_best",
                disabled=controls.locked("early_stopping"),
            )
    return dataclasses.replace(current, **changes)
