"""The addresses of the live streams and of the plotly.js they are drawn with (light to import: the
pages that only link to a stream, and app.py as the server starts, need no pandas for them)."""

from __future__ import annotations

from importlib import metadata

RUN_ROUTE = "/cnnlab/stream/runs/{run_id}"
# One epoch's snapshot figure of a run (kernels, feature maps, confusion, predictions): an ended
# epoch's never changes, so it is cached a year.
FIGURE_ROUTE = "/cnnlab/stream/runs/{run_id}/figures/{kind}/{epoch:int}"
# Stop, pause or resume a run: POST, JSON {"action": ..., "token": <a control token>}.
CONTROL_ROUTE = "/cnnlab/stream/runs/{run_id}/control"
CLASS_ROUTE = "/cnnlab/stream/class"
# The version in the address: a new plotly is a new address, so the old one may be cached for a year.
PLOTLY_ADDRESS = f"/cnnlab/static/plotly-{metadata.version('plotly')}.min.js"
