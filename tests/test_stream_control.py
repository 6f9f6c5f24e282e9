"""The control route the live view's Stop, Pause and Resume buttons send to, without a browser.

`POST /cnnlab/stream/runs/{id}/control` asked through Starlette's test client, against a real store
on disk and the server's real scheduler (`scheduler.shared`, without a warm worker): a control token
opens only its run, for a user the access rule lets change it; an expired, edited or stream token is
refused; a run a teacher paused is resumed by a teacher only; single-user mode needs no sign-in. The
buttons themselves, and a real worker answering, are tested in tests/e2e/test_live_stream.py.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Iterator

import pytest
from starlette.applications import Starlette

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # Starlette asks for `httpx2` over the installed `httpx`.
    from starlette.testclient import TestClient

from cnnlab.classroom.access import TEACHER
from cnnlab.classroom.stream_tokens import mint_control_token, mint_stream_token, read_control_token
from cnnlab.classroom.users import LOCAL_USER
from cnnlab.errors import AccessError
from cnnlab.runs.queue import scheduler as scheduler_module
from cnnlab.store.people import StoredUser
from cnnlab.store.run_store import Store
from cnnlab.store.statuses import Status
from cnnlab.ui.stream import routes
from tests.made_runs import make_run, reached


@pytest.fixture
def client(home_store: Store) -> Iterator[TestClient]:
    """A client of the stream routes, with the server's scheduler started (no warm worker)."""
    scheduler_module.shared(home_store.home, warm=False)
    try:
        yield TestClient(Starlette(routes=routes.ROUTES))
    finally:
        scheduler_module.shutdown_shared()


def _person(store: Store, name: str, role: str = "student") -> str:
    store.people.add_user(StoredUser(f"user-{name}", name, name.casefold(), role, None, None, time.time()))
    return f"user-{name}"


def _live(store: Store, owner: str, status: Status = Status.RUNNING) -> str:
    return reached(store, make_run(store, owner=owner, status=Status.STARTING).id, status).id


def _ask(client: TestClient, run_id: str, action: str, token: str) -> tuple[int, dict[str, object]]:
    response = client.post(f"/cnnlab/stream/runs/{run_id}/control", json={"action": action, "token": token})
    return response.status_code, response.json()


def test_a_control_token_controls_its_own_run_only(client: TestClient, home_store: Store) -> None:
    home = home_store.home
    ada, grace = _person(home_store, "Ada"), _person(home_store, "Grace")
    adas, graces = _live(home_store, ada), _live(home_store, grace)
    # Ada's token for her run does not stop Grace's, nor does a token Ada got for Grace's run.
    assert _ask(client, graces, "stop", mint_control_token(home, ada, adas))[0] == 403
    code, answer = _ask(client, graces, "stop", mint_control_token(home, ada, graces))
    assert code == 403 and "another student's" in str(answer["error"])
    assert home_store.get_run(graces).control is None
    # Her own run: the request is in the store, and the answer is the status the stream will say.
    code, answer = _ask(client, adas, "pause", mint_control_token(home, ada, adas))
    assert code == 200 and (answer["status"], answer["control"]) == ("running", "pause")
    assert home_store.pending_control(adas) == "pause"


def test_an_expired_edited_or_stream_token_is_refused(client: TestClient, home_store: Store) -> None:
    home = home_store.home
    ada = _person(home_store, "Ada")
    adas = _live(home_store, ada)
    token = mint_control_token(home, ada, adas)
    payload, signature = token.split(".")
    other_payload = mint_control_token(home, "user-Grace", adas).split(".")[0]
    refused = [
        mint_control_token(home, ada, adas, ttl_seconds=-1),
        f"{other_payload}.{signature}",
        f"{payload}.{signature[:-2]}AA",
        mint_stream_token(home, ada, adas),  # opens the stream, changes nothing
        "",
    ]
    for bad in refused:
        assert _ask(client, adas, "stop", bad)[0] == 403
    assert home_store.get_run(adas).control is None
    # And a stream never opens with a control token.
    assert client.get(f"/cnnlab/stream/runs/{adas}", params={"token": token}).status_code == 403
    with pytest.raises(AccessError, match="expired"):
        read_control_token(home, token, now=time.time() + 10**6)
    # A body that is not a control request says what it wants.
    response = client.post(f"/cnnlab/stream/runs/{adas}/control", json={"action": "delete", "token": token})
    assert response.status_code == 400 and '"delete"' in response.json()["error"]


def test_a_student_cannot_resume_a_run_the_teacher_paused(client: TestClient, home_store: Store) -> None:
    home = home_store.home
    ada, teacher = _person(home_store, "Ada"), _person(home_store, "Turing", "teacher")
    adas = _live(home_store, ada, Status.PAUSED)
    # The teacher holds the pause of Ada's paused run: the store notes who asked.
    assert _ask(client, adas, "pause", mint_control_token(home, teacher, adas))[0] == 200
    assert home_store.requested_by(adas, "pause") == TEACHER
    code, answer = _ask(client, adas, "resume", mint_control_token(home, ada, adas))
    assert code == 403 and "only your teacher can resume it" in str(answer["error"])
    assert home_store.pending_control(adas) is None
    # She may still stop it; the teacher may resume it.
    code, answer = _ask(client, adas, "resume", mint_control_token(home, teacher, adas))
    assert code == 200 and answer["control"] == "resume"
    assert _ask(client, adas, "stop", mint_control_token(home, ada, adas))[0] == 200
    assert home_store.pending_control(adas) == "stop"


def test_single_user_mode_needs_no_sign_in_and_an_ended_run_says_why(
    client: TestClient, home_store: Store
) -> None:
    home = home_store.home
    run_id = _live(home_store, LOCAL_USER.id)
    code, answer = _ask(client, run_id, "stop", mint_control_token(home, LOCAL_USER.id, run_id))
    assert code == 200 and (answer["control"], answer["active"]) == ("stop", True)
    reached(home_store, run_id, Status.STOPPED)
    code, answer = _ask(client, run_id, "pause", mint_control_token(home, LOCAL_USER.id, run_id))
    assert code == 409 and "stopped" in str(answer["error"])


def test_an_answer_and_the_stream_say_which_news_is_newer(client: TestClient, home_store: Store) -> None:
    """Each status, in the stream and in a control request's answer, names the run's newest event read
    before it (every request and status change logs one): the browser keeps the newer of two, so an
    answer that arrives after the stream's news does not undo it (tests/e2e/test_live_stream.py)."""
    from cnnlab.ui.stream.run_feed import RunFeed

    run_id = _live(home_store, LOCAL_USER.id)
    feed = RunFeed(home_store, run_id)
    before = feed.history()["status"]
    code, answer = _ask(client, run_id, "pause", mint_control_token(home_store.home, LOCAL_USER.id, run_id))
    assert code == 200 and answer["seen_through"] > before["seen_through"]
    home_store.set_status(run_id, Status.PAUSED)  # The worker pauses, as after the request.
    home_store.clear_control(run_id, "pause")
    [paused] = [message.data for message in feed.tick() if message.event == "status"]
    assert (paused["status"], paused["control"]) == ("paused", None)
    assert paused["seen_through"] > answer["seen_through"]  # The late answer is the older news.
