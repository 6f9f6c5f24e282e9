"""What Streamlit does after each script run in this server: no `keras.backend.clear_session()`.

Streamlit ends every script run with `_clean_problem_modules`, which calls
`keras.backend.clear_session()` once Keras is imported. That was for Keras 1-2, whose models lived in
one global TensorFlow graph a script kept adding to. In Keras 3 it resets Keras's per-thread name
counters (each run has its own thread anyway), drops TensorFlow's compiled kernels (the next
prediction compiles them again) and runs a full `gc.collect()`: about 0.17 s of a core after every
run of every session once a page has loaded a model, however little the run did. This server's
models are loaded once and shared (`cnnlab.ui.cache.run_models`); nothing of theirs needs clearing.
`keep_keras_between_runs` puts Streamlit's step back without the Keras part (it still closes
matplotlib's figures, as Streamlit does). Streamlit has no setting for this, so its module's function
is replaced; `tests/test_script_runs.py` fails should a new Streamlit stop calling it by that name.
"""

from __future__ import annotations

import sys

from streamlit.runtime.scriptrunner import script_runner

STREAMLITS_STEP = script_runner._clean_problem_modules  # Kept for the tests.


def _clean_problem_modules() -> None:
    """Streamlit's step after a script run, less Keras's `clear_session`: close matplotlib's figures."""
    pyplot = sys.modules.get("matplotlib.pyplot")
    if pyplot is not None:
        pyplot.close("all")


def keep_keras_between_runs() -> None:
    """Make Streamlit's step after each script run of this process leave Keras as it is (idempotent)."""
    script_runner._clean_problem_modules = _clean_problem_modules
