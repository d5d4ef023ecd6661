"""`GET /workers` (what each worker serves, its load, whether connected),
a JSON task's priority, queue and constraints stored and carried to the
scheduler, and `GET /tasks/<id>`'s `waiting_for`: why pending runs wait
when no connected worker accepts them. The admin's worker list shows
queues and labels."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client

from cluster_app import services as cluster_services
from tasks_app import notify, policy, selectors
from tasks_app.models import WorkerNode
from tests.api.test_modules_and_json_tasks import post_json, upload

pytestmark = pytest.mark.django_db


def _join(
    peer: str, *, labels: dict[str, str] | None = None, queues: list[str] | None = None
) -> None:
    cluster_services.worker_joined(
        peer_id=peer,
        address=f"/ip4/10.0.0.1/tcp/{len(peer)}",
        concurrency=4,
        labels=labels,
        queues=queues,
    )


def test_workers_lists_every_worker_with_what_it_serves(client: Client) -> None:
    _join("12D3KooWgpu", labels={"gpu": "a100"}, queues=["ml", "default"])
    _join("12D3KooWplain")
    cluster_services.worker_load(peer_id="12D3KooWgpu", in_flight=3)
    cluster_services.worker_left(peer_id="12D3KooWplain")
    response = client.get("/workers")
    assert response.status_code == 200
    body = response.json()
    assert [w["peer"] for w in body] == ["12D3KooWgpu", "12D3KooWplain"]  # connected first
    gpu, plain = body
    assert set(gpu) == {
        "peer",
        "address",
        "labels",
        "queues",
        "concurrency",
        "in_flight",
        "connected",
        "last_seen",
    }
    assert gpu["labels"] == {"gpu": "a100"} and gpu["queues"] == ["ml", "default"]
    assert (gpu["concurrency"], gpu["in_flight"], gpu["connected"]) == (4, 3, True)
    assert plain["labels"] == {} and plain["queues"] == ["default"] and not plain["connected"]
    assert client.get("/workers/").json() == body


def test_priority_queue_and_constraints_are_taken_and_reach_the_scheduler(client: Client) -> None:
    body = {
        "module": upload(client),
        "priority": 7,
        "queue": "ml",
        "constraints": {"gpu": "a100", "zone": "eu"},
    }
    response = post_json(client, "/tasks", body)
    assert response.status_code == 201, response.content
    created = response.json()
    assert (created["priority"], created["queue"], created["constraints"]) == (
        7,
        "ml",
        {"gpu": "a100", "zone": "eu"},
    )
    [run] = selectors.due_runs(task_id=created["id"])
    assert run.priority == 7
    assert run.route == policy.route_of("ml", {"zone": "eu", "gpu": "a100"})
    # As a submission's message carries it to the scheduler, and back.
    assert notify.run_from_message(notify.run_to_message(run)).route == run.route
    assert notify.run_from_message(notify.run_to_message(run)).priority == 7


def test_a_seed_form_runs_message_is_as_before(client: Client) -> None:
    response = post_json(client, "/tasks", {"module": upload(client)})
    [run] = selectors.due_runs(task_id=response.json()["id"])
    assert run.route is policy.DEFAULT_ROUTE and run.priority == 0
    assert len(notify.run_to_message(run)) == 10


def _task(client: Client, **fields: Any) -> dict[str, Any]:
    response = post_json(client, "/tasks", {"module": upload(client), **fields})
    assert response.status_code == 201, response.content
    return dict(client.get(f"/tasks/{response.json()['id']}").json())


def test_waiting_for_says_why_pending_runs_wait(client: Client) -> None:
    assert _task(client)["waiting_for"] == "no worker is connected"
    _join("12D3KooWplain")
    assert _task(client)["waiting_for"] is None  # a worker accepts it
    waiting = _task(client, queue="ml", constraints={"gpu": "a100"})
    assert waiting["waiting_for"] == (
        "no connected worker accepts it: it needs a worker serving queue 'ml' with labels gpu=a100"
    )
    _join("12D3KooWgpu", labels={"gpu": "t4"}, queues=["ml"])
    assert client.get(f"/tasks/{waiting['id']}").json()["waiting_for"] == waiting["waiting_for"]
    _join("12D3KooWa100", labels={"gpu": "a100"}, queues=["ml"])
    assert client.get(f"/tasks/{waiting['id']}").json()["waiting_for"] is None


def test_waiting_for_is_null_once_nothing_is_pending(client: Client) -> None:
    task = _task(client, queue="ml")
    assert task["waiting_for"] is not None
    assert client.delete(f"/tasks/{task['id']}").status_code == 200
    assert client.get(f"/tasks/{task['id']}").json()["waiting_for"] is None


def test_the_admin_lists_queues_and_labels(client: Client) -> None:
    _join("12D3KooWgpu", labels={"gpu": "a100", "zone": "eu"}, queues=["ml", "default"])
    User.objects.create_superuser("admin", "a@example.com", "pw")
    client.login(username="admin", password="pw")
    page = client.get("/admin/cluster_app/worker/").content.decode()
    assert "gpu=a100, zone=eu" in page
    assert "ml, default" in page
    assert WorkerNode.objects.get().queues == ["ml", "default"]
