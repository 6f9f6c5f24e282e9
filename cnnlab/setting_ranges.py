"""The one definition of each training setting's range, for the widgets, the specs and the CLI alike.

`cnnlab.specs.TrainingSettings` refuses a value outside its range (SpecError), whether it came from
JSON, a link, the CLI or a sweep; the Train page's widgets take their minimum and maximum from
here (`cnnlab.ui.pages.train.training_form`, the Data page's augmentation form), and a link's out-of-range value is brought into the
range (`cnnlab.ui.session.setup_entry`). So the CLI refuses exactly what the page cannot be set to.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

__all__ = ["AUGMENTATION_RANGES", "BATCH_SIZES", "LARGEST_SEED", "TRAINING_RANGES", "Range", "bound_text"]

LARGEST_SEED = 2**32 - 1  # NumPy's seeds stop here.


def bound_text(value: float) -> str:
    """A range's end as a message writes it: whole values in full (4294967295), others short (1e-06)."""
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


@dataclass(frozen=True)
class Range:
    """The closed interval [`minimum`, `maximum`] of one setting; `whole` for whole numbers."""

    minimum: float
    maximum: float
    whole: bool = False

    def bounds(self) -> tuple[float, float]:
        """(minimum, maximum), as whole numbers for a whole-number setting (a number input's type)."""
        if self.whole:
            return int(self.minimum), int(self.maximum)
        return self.minimum, self.maximum

    def contains(self, value: float) -> bool:
        """True if `value` lies in the range (its ends included)."""
        return self.minimum <= value <= self.maximum

    def clamp(self, value: float) -> float:
        """`value` moved to the nearest end of the range if it lies outside."""
        return min(max(value, self.minimum), self.maximum)

    def describe(self) -> str:
        """The range in interval notation, e.g. "[1, 500]"."""
        return f"[{bound_text(self.minimum)}, {bound_text(self.maximum)}]"


TRAINING_RANGES: Mapping[str, Range] = MappingProxyType(
    {
        # From the learning-rate finder's first rate (cnnlab.runs.queue.learning_rate_range) to a rate that diverges.
        "learning_rate": Range(1e-7, 10.0),
        "momentum": Range(0.0, 0.99),
        "weight_decay": Range(0.0, 1.0),
        "schedule_step_epochs": Range(1, 100, whole=True),
        "schedule_decay_rate": Range(0.05, 1.0),
        "plateau_patience": Range(0, 50, whole=True),
        "plateau_factor": Range(0.05, 0.95),
        "minimum_learning_rate": Range(0.0, 1.0),
        "batch_size": Range(1, 512, whole=True),
        "epochs": Range(1, 500, whole=True),
        "l2": Range(0.0, 1.0),
        "early_stopping_patience": Range(0, 100, whole=True),
        "seed": Range(0, LARGEST_SEED, whole=True),
    }
)
# The augmentation's strengths (`TrainingSettings.augmentation`), set on the Data page: fractions of a
# turn, of the image size, or of the contrast.
AUGMENTATION_RANGES: Mapping[str, Range] = MappingProxyType(
    {
        "rotation": Range(0.0, 0.5),
        "zoom": Range(0.0, 0.5),
        "translation": Range(0.0, 0.5),
        "shear": Range(0.0, 0.5),
        "contrast": Range(0.0, 0.9),
    }
)
# The batch sizes the Train page offers: the powers of two in the batch-size range.
BATCH_SIZES: tuple[int, ...] = tuple(
    2**power for power in range(16) if TRAINING_RANGES["batch_size"].contains(2**power)
)
