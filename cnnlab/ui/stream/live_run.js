// The live view of one run, drawn in the browser from the run's Server-Sent Events stream
// (cnnlab/ui/stream/routes.py). One EventSource per run and page, shared by the page's mounts:
// "watch" (the status sentence and the progress bar, drawn from the stream; tells the page when the
// run ends or starts, and when the stream does not connect), "news" (tells the live view's fragment
// of a diagnosis or a snapshot it draws), "controls"
// (Stop and Pause or Resume, drawn from the stream's status and sent as POST requests with a control
// token, see cnnlab/ui/stream/routes.py), "curves" (loss, accuracy and learning rate, with
// plotly.js, points appended as they arrive), "figure" (one snapshot's figure, fetched by its
// epoch's address when the stream announces a new snapshot), and "word" (the status in one word, for
// the sidebar card). See cnnlab/ui/stream/live_chart.py.

const DRAW_MS = 500; // the curves are drawn at most this often (each drawing redraws whole charts)
const streams = window.cnnlabStreams || (window.cnnlabStreams = {});

function loadPlotly(address) {
  if (window.Plotly) return Promise.resolve(window.Plotly);
  if (!window.cnnlabPlotly) {
    window.cnnlabPlotly = new Promise((resolve, reject) => {
      const script = document.createElement("script");
      script.src = address;
      script.onload = () => resolve(window.Plotly);
      script.onerror = () => reject(new Error("plotly.js did not load from " + address));
      document.head.appendChild(script);
    });
  }
  return window.cnnlabPlotly;
}

// The run's status an event tells, if it tells one: a status event's, or a history's.
function statusIn(event, data) {
  return event === "status" ? data : event === "history" ? data.status : null;
}

// The run's shared stream: its EventSource, its listeners, and what it said since its last history
// (replayed to a listener that comes later).
function streamOf(streamKey, address) {
  let stream = streams[streamKey];
  if (stream && stream.source.readyState !== EventSource.CLOSED) return stream;
  stream = streams[streamKey] = { source: null, listeners: new Set(), told: [], connected: false };
  const source = (stream.source = new EventSource(address));
  const tell = (stream.tell = (event, data) => {
    if (event === "history") stream.told = [];
    stream.told.push([event, data]);
    for (const listener of stream.listeners) listener(event, data);
  });
  // The newest status the stream said, by the run's event it was read after (`seen_through`).
  let seenThrough = 0;
  // A control request's answer says the status at once, unless the stream already said a newer one:
  // an answer that comes after the stream's news (a busy server) would undo it, and nothing would
  // redraw it ("Pausing…" for ever under "Paused" in the store).
  stream.answer = (status) => {
    if ((status.seen_through || 0) > seenThrough) tell("status", status);
  };
  for (const event of ["history", "metrics", "status", "event", "diagnosis", "snapshot", "runs", "removed"]) {
    source.addEventListener(event, (message) => {
      const data = JSON.parse(message.data);
      if (event === "history") stream.connected = true;
      const status = statusIn(event, data);
      if (status) seenThrough = Math.max(seenThrough, status.seen_through || 0);
      tell(event, data);
    });
  }
  source.onerror = () => {
    if (source.readyState === EventSource.CLOSED) tell("closed", null);
  };
  return stream;
}

function listen(stream, listener) {
  for (const [event, data] of stream.told) listener(event, data);
  stream.listeners.add(listener);
  return () => {
    stream.listeners.delete(listener);
    if (!stream.listeners.size) {
      stream.source.close();
      if (streams[stream.streamKey] === stream) delete streams[stream.streamKey];
    }
  };
}

function describeLeft(seconds) {
  const whole = Math.round(seconds);
  const hours = Math.floor(whole / 3600);
  const minutes = Math.floor((whole % 3600) / 60);
  const rest = String(whole % 60).padStart(2, "0");
  if (hours) return `about ${hours} h ${String(minutes).padStart(2, "0")} min left`;
  return `about ${minutes}:${rest} left`;
}

// Where a run is, in the words of the page's sentences (data.sentences: cnnlab/ui/pages/train/run_status.py),
// from the stream's status; null for a status the page says itself (queued, starting, pruning).
function sentenceOf(status, data) {
  const planned = Math.max(status.epochs_planned || 1, 1);
  const words = {
    last_epoch: status.last_epoch || 0,
    next_epoch: Math.min((status.last_epoch || 0) + 1, planned),
    epochs_planned: planned,
    teacher: data.teacher,
  };
  const fill = (name) => data.sentences[name].replace(/\{(\w+)\}/g, (whole, word) => String(words[word]));
  const byTeacher = status.requested_by === "teacher";
  const reason = status.reason || "";
  if (status.status === "paused" && status.control !== "resume" && byTeacher) return fill("paused_by_teacher");
  if (status.status === "stopped" && byTeacher) return fill("stopped_by_teacher");
  if (status.control === "stop" && status.active) return fill("stopping");
  if (status.status === "running" && status.control === "pause") return fill("pausing");
  if (status.status === "running" && !status.control) return fill("training");
  if (status.status === "paused" && status.control === "resume") return fill("resuming");
  if (status.status === "paused" && !status.control) return fill("paused");
  if (status.status === "stopped") {
    return !reason || reason.startsWith(data.user_stop_reason)
      ? fill("stopped")
      : `Stopped after epoch ${words.last_epoch}: ${reason}`;
  }
  if (!status.active) {
    const name = status.status.charAt(0).toUpperCase() + status.status.slice(1);
    return status.status === "completed"
      ? `Completed after ${words.last_epoch} epochs.`
      : `${name} after epoch ${words.last_epoch}.` + (reason ? ` ${reason}` : "");
  }
  return null;
}

// The statuses the browser draws by itself: between them the page does not rerun.
const DRAWN_HERE = new Set(["running", "paused"]);

// One rerun of the page (its fragment, or the whole script) for the news of one moment.
function teller(state) {
  let told = null;
  return (reason) => {
    if (told) return;
    told = setTimeout(() => {
      told = null;
      state.setTriggerValue("news", { reason, at: Date.now() });
    }, 50);
  };
}

// The status sentence and the progress bar, drawn from the stream (mounted outside the page's
// fragments): it reruns the whole page, once, only when the run leaves the statuses drawn here (it
// ended: Continue and Fork; or it started), after the sentence says so; and when the stream is
// refused on a reconnect (the page mints a new token).
function watch(root, state) {
  root.innerHTML =
    '<div class="cnnlab-row"><div class="cnnlab-info"></div><div class="cnnlab-progress"><div class="cnnlab-bar">' +
    '<div class="cnnlab-fill"></div></div><div class="cnnlab-progress-text"></div></div></div>';
  const fill = root.querySelector(".cnnlab-fill");
  const text = root.querySelector(".cnnlab-progress-text");
  const sentence = root.querySelector(".cnnlab-info");
  sentence.textContent = state.data.sentence;
  let status = null;
  const epochs = new Map();
  const tellPage = teller(state);
  const draw = () => {
    if (!status) return;
    const planned = Math.max(status.epochs_planned || 1, 1);
    const done = Math.min(status.last_epoch || 0, planned);
    let tail = "";
    if (status.status === "paused") tail = " — paused";
    else if (status.control === "pause") tail = " — pausing";
    else if (status.status === "running") {
      const seconds = [...epochs.values()].map((row) => row.epoch_seconds).filter((value) => value);
      if (seconds.length && done < planned) {
        const mean = seconds.reduce((sum, value) => sum + value, 0) / seconds.length;
        tail = " — " + describeLeft(mean * (planned - done));
      }
    }
    fill.style.width = `${(100 * done) / planned}%`;
    text.textContent = `${done} of ${planned} epochs${tail}`;
    const said = sentenceOf(status, state.data);
    if (said) {
      sentence.textContent = said;
      sentence.dataset.status = status.status;
    }
  };
  const differs = () => {
    const drawn = state.data.drawn;
    if (!status || (status.status === drawn.status && (status.control || null) === (drawn.control || null))) {
      return false;
    }
    return !(DRAWN_HERE.has(status.status) && DRAWN_HERE.has(drawn.status));
  };
  return (event, data) => {
    if (event === "history" || event === "status") {
      status = event === "history" ? data.status : data;
      if (event === "history") {
        epochs.clear();
        for (const row of data.epochs) epochs.set(row.epoch, row);
      }
      draw(); // the sentence is on screen before the page reruns for it
      if (differs()) tellPage("status");
      return;
    }
    if (event === "metrics") {
      for (const row of data) {
        if (row.kind !== "epoch") continue;
        epochs.set(row.epoch, row);
        if (status) status = { ...status, last_epoch: Math.max(status.last_epoch || 0, row.epoch) };
      }
    } else if (event === "closed" && state.stream.connected) {
      tellPage("closed");
    }
    draw();
  };
}

// The news the page's live view (a fragment) draws itself: a diagnosis it has not drawn, and, with
// data.rerun_on_snapshot, a new epoch's snapshot. Draws nothing; reruns only the fragment.
function news(root, state) {
  root.innerHTML = "";
  const tellPage = teller(state);
  return (event, data) => {
    const drawn = state.data.drawn;
    if (event === "history" && data.diagnoses.length > drawn.diagnoses) tellPage("diagnosis");
    else if (event === "diagnosis" && data.index >= drawn.diagnoses) tellPage("diagnosis");
    else if (event === "snapshot" && state.data.rerun_on_snapshot && data.epoch !== drawn.snapshot) {
      tellPage("snapshot");
    }
  };
}

// Stop and Pause or Resume, as the stream's status allows them (the page's own buttons' rules:
// cnnlab/ui/pages/train/live_controls.py), sent to the control route with the page's control token
// (data.token; null: this user may not change the run, the buttons are off). The answer's status is
// told to every mount of the stream on the page at once; the stream tells it to every other viewer.
function controls(root, state) {
  root.innerHTML =
    '<div class="cnnlab-buttons"><button type="button" class="cnnlab-button" data-action="stop"></button>' +
    '<button type="button" class="cnnlab-button" data-action="pause"></button></div>' +
    '<div class="cnnlab-error" role="alert"></div>';
  const stop = root.querySelector('[data-action="stop"]');
  const second = root.querySelector('[data-action="pause"]');
  const error = root.querySelector(".cnnlab-error");
  let status = state.data.status;
  let sending = false;
  const draw = () => {
    const data = state.data;
    const pending = status.active && status.status !== "queued" ? status.control : null;
    const off = !data.token || sending;
    stop.textContent = pending === "stop" ? "Stopping…" : "Stop";
    stop.disabled = off || !status.active || pending === "stop";
    second.title = "";
    if (pending === "pause" || pending === "resume") {
      second.textContent = pending === "pause" ? "Pausing…" : "Resuming…";
      second.dataset.action = "";
      second.disabled = true;
    } else if (status.status === "paused") {
      // A run a teacher paused waits for the teacher: its owner sees why Resume is off.
      const held = !data.sees_everything && status.requested_by === "teacher";
      second.textContent = "Resume";
      second.dataset.action = "resume";
      second.disabled = off || Boolean(pending) || held;
      if (held) second.title = data.held_help;
    } else {
      second.textContent = "Pause";
      second.dataset.action = "pause";
      second.disabled = off || status.status !== "running" || Boolean(pending);
    }
    if (!data.token) stop.title = second.title = data.no_token_help;
  };
  const send = (action) => {
    sending = true;
    error.textContent = "";
    draw();
    fetch(state.data.control, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ action, token: state.data.token }),
    })
      .then((response) => response.json().then((answer) => [response.ok, answer]))
      .then(([ok, answer]) => {
        if (ok) state.stream.answer(answer);
        else error.textContent = answer.error;
      })
      .catch(() => {
        error.textContent = "The server did not answer; check the connection and try again.";
      })
      .finally(() => {
        sending = false;
        draw();
      });
  };
  for (const button of [stop, second]) {
    button.addEventListener("click", () => {
      if (button.dataset.action) send(button.dataset.action);
    });
  }
  state.redraw = draw; // the page drew again (a new token, another user's rights)
  draw();
  return (event, data) => {
    if (event === "history") status = data.status;
    else if (event === "status") status = data;
    else if (event === "metrics" && status) {
      const last = Math.max(status.last_epoch || 0, ...data.filter((row) => row.kind === "epoch").map((row) => row.epoch));
      status = { ...status, last_epoch: last };
    } else return;
    draw();
  };
}

// The run's status in one word (the sidebar card's on the Train page), as the stream says it.
function word(root, state) {
  root.innerHTML = '<div class="cnnlab-word"></div>';
  const element = root.querySelector(".cnnlab-word");
  element.textContent = state.data.word;
  return (event, data) => {
    const status = statusIn(event, data);
    if (status) element.textContent = status.status.charAt(0).toUpperCase() + status.status.slice(1);
  };
}

// A table of runs (data.drawn: each run's status, request, epochs and best accuracy as the page drew
// them): the page reruns, at most once a second, when the class stream says a row changed, or that a
// run it does not show is newer than data.since (a table of the newest runs shows a new one).
function classWatch(root, state) {
  let told = 0;
  let timer = null;
  const tellPage = () => {
    if (timer) return;
    timer = setTimeout(() => {
      timer = null;
      told = Date.now();
      state.setTriggerValue("news", { at: told });
    }, Math.max(50, told + 1000 - Date.now()));
  };
  const changed = (row) => {
    const drawn = state.data.drawn[row.id];
    if (!drawn) return row.created_at > state.data.since;
    return drawn.join("|") !== [row.status, row.control, row.last_epoch, row.best_val_accuracy].join("|");
  };
  return (event, data) => {
    if (event === "history" && data.runs.some(changed)) tellPage();
    else if (event === "runs" && data.some(changed)) tellPage();
    else if (event === "removed" && data.some((id) => id in state.data.drawn)) tellPage();
  };
}

// Loss, accuracy and learning rate as the app's figures draw them (their layouts and empty traces
// come from cnnlab/figures/training.py), the batch points appended as they arrive.
function curves(root, state, Plotly) {
  const figures = state.data.figures;
  root.innerHTML =
    '<div class="cnnlab-empty"></div><div class="cnnlab-curves">' +
    '<div class="cnnlab-chart" data-metric="loss"></div><div class="cnnlab-chart" data-metric="accuracy"></div>' +
    '</div><div class="cnnlab-chart" data-metric="learning_rate"></div>';
  const empty = root.querySelector(".cnnlab-empty");
  const charts = {};
  for (const element of root.querySelectorAll(".cnnlab-chart")) charts[element.dataset.metric] = element;
  let lastStep = -1;
  const epochs = new Map();
  let diagnoses = [];
  let hasRows = false;
  const config = { displaylogo: false, responsive: true };
  // Plotly sizes a chart drawn while hidden (no points yet) at its default 700 px and follows only
  // the window's resizes: fit the charts again whenever the component's box changes.
  new ResizeObserver(() => {
    for (const chart of Object.values(charts)) {
      if (chart.data && chart.offsetParent !== null) Plotly.Plots.resize(chart);
    }
  }).observe(root);
  const layoutOf = (metric) => {
    const layout = JSON.parse(JSON.stringify(figures[metric].layout));
    if (metric === "learning_rate") return layout;
    layout.shapes = diagnoses.map((found) => ({
      type: "line", xref: "x", yref: "paper", x0: found.epoch, x1: found.epoch, y0: 0, y1: 1,
      line: { dash: "dot", color: state.data.diagnosis_colours[found.kind] || "#7f7f7f" },
    }));
    layout.annotations = diagnoses.map((found) => ({
      xref: "x", yref: "paper", x: found.epoch, y: 1, text: found.title, showarrow: false,
      font: { color: state.data.diagnosis_colours[found.kind] || "#7f7f7f" }, yanchor: "bottom",
      hovertext: `${found.title}: ${found.cause}<br>Fix: ${found.fix}`,
    }));
    return layout;
  };
  const epochTraces = (metric) => {
    const rows = [...epochs.values()].sort((a, b) => a.epoch - b.epoch);
    const traces = figures[metric].data;
    if (metric === "learning_rate") {
      return [{ ...traces[0], x: rows.map((row) => row.epoch), y: rows.map((row) => row.learning_rate) }];
    }
    return [
      { ...traces[1], x: rows.map((row) => row.epoch), y: rows.map((row) => row[metric]) },
      { ...traces[2], x: rows.map((row) => row.epoch), y: rows.map((row) => row["val_" + metric]) },
    ];
  };
  const batches = { x: [], loss: [], accuracy: [] };
  const drawAll = () => {
    empty.textContent = hasRows ? "" : state.data.no_metrics;
    root.querySelector(".cnnlab-curves").style.display = hasRows ? "" : "none";
    charts.learning_rate.style.display = epochs.size ? "" : "none";
    for (const metric of ["loss", "accuracy"]) {
      const batchTrace = { ...figures[metric].data[0], x: batches.x.slice(), y: batches[metric].slice() };
      Plotly.react(charts[metric], [batchTrace, ...epochTraces(metric)], layoutOf(metric), config);
    }
    if (epochs.size) Plotly.react(charts.learning_rate, epochTraces("learning_rate"), layoutOf("learning_rate"), config);
  };
  const appendBatches = (rows) => {
    const fresh = rows.filter((row) => row.step > lastStep);
    if (!fresh.length) return false;
    lastStep = fresh[fresh.length - 1].step;
    for (const row of fresh) {
      batches.x.push(row.x);
      batches.loss.push(row.loss);
      batches.accuracy.push(row.accuracy);
    }
    return fresh;
  };
  // Drawn at most every DRAW_MS: a fast run's news of many ticks costs the browser one drawing. News
  // after a quiet spell (the first point above all) is drawn at once.
  let pending = null;
  let redraw = false;
  let drawnAt = 0;
  const flush = () => {
    const fresh = pending;
    pending = null;
    drawnAt = Date.now();
    if (redraw) {
      redraw = false;
      drawAll();
    } else if (fresh.length) {
      for (const metric of ["loss", "accuracy"]) {
        const update = { x: [fresh.map((row) => row.x)], y: [fresh.map((row) => row[metric])] };
        Plotly.extendTraces(charts[metric], update, [0]);
      }
    }
  };
  const later = (rows, whole) => {
    redraw = redraw || whole;
    if (pending === null) {
      pending = [];
      setTimeout(flush, Math.max(0, drawnAt + DRAW_MS - Date.now()));
    }
    pending.push(...rows);
  };
  return (event, data) => {
    if (event === "history") {
      lastStep = -1;
      batches.x = []; batches.loss = []; batches.accuracy = [];
      epochs.clear();
      for (const row of data.epochs) epochs.set(row.epoch, row);
      appendBatches(data.batches);
      diagnoses = data.diagnoses;
      hasRows = batches.x.length > 0 || epochs.size > 0;
      later([], true);
    } else if (event === "metrics") {
      const fresh = appendBatches(data.filter((row) => row.kind === "batch")) || [];
      const newEpochs = data.filter((row) => row.kind === "epoch");
      for (const row of newEpochs) epochs.set(row.epoch, row);
      later(fresh, !hasRows || newEpochs.length > 0);
      hasRows = true;
    } else if (event === "diagnosis") {
      if (!diagnoses.some((found) => found.index === data.index)) diagnoses = [...diagnoses, data];
      later([], true);
    }
  };
}

// One snapshot's figure (kernels, feature maps, confusion, predictions): data.epoch's at first, then
// the newest epoch's, fetched from data.address + epoch + data.query (an ended epoch's address is
// cached a year) when the stream says a newer snapshot was written. The page does not rerun for it.
function figure(root, state, Plotly) {
  root.innerHTML = '<div class="cnnlab-figure-caption"></div><div class="cnnlab-chart"></div>';
  const caption = root.querySelector(".cnnlab-figure-caption");
  const chart = root.querySelector(".cnnlab-chart");
  let shown = null; // [address, epoch] of the figure drawn
  let newest = state.data.epoch;
  const show = (epoch) => {
    const address = state.data.address + epoch + state.data.query;
    if (shown && shown[0] === address) return;
    shown = [address, epoch];
    fetch(address)
      .then((response) => (response.ok ? response.json() : null))
      .then((made) => {
        if (!made || shown[0] !== address) return; // not recorded (yet), or a newer one asked meanwhile
        Plotly.react(chart, made.data, made.layout, { displaylogo: false, responsive: true });
        chart.dataset.epoch = String(epoch);
        caption.textContent = `Epoch ${epoch} (latest)`;
      });
  };
  state.redraw = () => {
    newest = Math.max(newest, state.data.epoch);
    show(newest);
  };
  state.redraw();
  return (event, data) => {
    const epoch = event === "history" ? data.snapshot.epoch : event === "snapshot" ? data.epoch : null;
    if (epoch !== null && epoch > newest) {
      newest = epoch;
      show(newest);
    }
  };
}

// The mounts that only listen to the run's stream, by mode.
const LISTENERS = { controls, news, word };

export default function (component) {
  const { data, parentElement, setTriggerValue } = component;
  let root = parentElement.querySelector(".cnnlab-live");
  if (!root) {
    root = document.createElement("div");
    root.className = "cnnlab-live";
    root.dataset.mode = data.mode;
    parentElement.appendChild(root);
  }
  const state = root.cnnlabState || (root.cnnlabState = { unlisten: null, streamKey: null });
  state.data = data; // what the page drew this time: compared with the stream's news
  state.setTriggerValue = setTriggerValue;
  const stale = state.stream && state.stream.source.readyState === EventSource.CLOSED;
  if (state.streamKey === data.stream_key && !stale) {
    if (state.redraw) state.redraw(); // a figure for another layer, image or normalisation
    return state.cleanup;
  }
  if (state.unlisten) state.unlisten();
  state.streamKey = data.stream_key;
  const stream = (state.stream = streamOf(data.stream_key, data.stream));
  stream.streamKey = data.stream_key;
  if (data.mode in LISTENERS) {
    state.unlisten = listen(stream, LISTENERS[data.mode](root, state));
  } else if (data.mode === "watch" || data.mode === "class") {
    state.unlisten = listen(stream, data.mode === "watch" ? watch(root, state) : classWatch(root, state));
    // A stream that says nothing for a while (a proxy that buffers it, a refusal): the page polls instead.
    setTimeout(() => {
      if (!stream.connected && state.stream === stream) setTriggerValue("fallback", { at: Date.now() });
    }, data.fallback_seconds * 1000);
  } else {
    let cancelled = false;
    let unlisten = null;
    loadPlotly(data.plotly).then((Plotly) => {
      if (!cancelled) unlisten = listen(stream, (data.mode === "figure" ? figure : curves)(root, state, Plotly));
    });
    state.unlisten = () => {
      cancelled = true;
      if (unlisten) unlisten();
    };
  }
  state.cleanup = () => {
    if (state.unlisten) state.unlisten();
    state.unlisten = null;
    state.streamKey = null;
  };
  return state.cleanup;
}
