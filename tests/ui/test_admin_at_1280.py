"""The admin at 1280x800 in real headless Chromium against the live gateway,
with runs and attempts made by real workers: a task's attempts show their
outcome and result or error (nothing clipped), the task list's last column
is on screen, every time is written one way to the second, apps have human
names, the newest task comes first, and a task's page has no Save button.
The Module list shows every column on screen (long export names and
hashes included), and a module's page is read-only and links its tasks."""

from __future__ import annotations

import hashlib
import re
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest
import wasmtime

from tests.e2e.cluster import HTTP, MANAGE, PROJECT_ROOT, Cluster
from tests.ui.live import submit
from tests.ui.test_status_page import browser  # noqa: F401  (the fixture)

WIDTH, HEIGHT = 1280, 800
TRAP = bytes(
    wasmtime.wat2wasm('(module (func (export "run") (param i64 i64) (result i64) unreachable))')
)
# A run module that also exports its run under many more names, the first
# of them one long unbroken (mangled-looking) symbol.
LONG_EXPORT = "_ZN" + "9long_path" * 20 + "E"
MANY_EXPORTS = [LONG_EXPORT, *(f"an_export_with_a_rather_long_name_{n:02}" for n in range(40))]
EXPORTS_WASM = bytes(
    wasmtime.wat2wasm(
        '(module (func $run (export "run") (param i64 i64) (result i64) i64.const 0) '
        + " ".join(f'(export "{name}" (func $run))' for name in MANY_EXPORTS)
        + ")"
    )
)
WASI_WASM = bytes(wasmtime.wat2wasm('(module (func (export "_start")))'))
MODULE_COLUMNS = ("short_hash", "kind", "size", "export_names", "task_count", "created_at")
# The one way a time is written on every page (wwproject/formats).
TIME = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2} UTC$")


def create_superuser(cluster: Cluster, username: str, password: str) -> None:
    subprocess.run(
        [
            *(sys.executable, MANAGE, "createsuperuser", "--noinput"),
            *("--username", username, "--email", f"{username}@example.com"),
        ],
        env={**cluster.env, "DJANGO_SUPERUSER_PASSWORD": password},
        check=True,
        cwd=PROJECT_ROOT,
        capture_output=True,
    )


def log_in(chromium: Any, username: str, password: str) -> Any:
    page = chromium.new_page(viewport={"width": WIDTH, "height": HEIGHT})
    page.goto(f"http://{HTTP}/admin/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("input[type=submit]")
    page.wait_for_selector("#user-tools")
    return page


@pytest.fixture(scope="module")
def tasks(cluster: Cluster) -> Iterator[None]:
    """A task whose runs trap (two attempts each: retries=1), one that
    succeeds, then (newest) one cancelled before its runs were due."""
    response = cluster.request(
        "POST",
        "/tasks",
        data={"id": "adm-trap", "start": "0", "repeats": "2", "retries": "1"},
        files={"wasm": ("trap.wasm", TRAP)},
    )
    assert response.status_code == 201, response.text
    submit(cluster, "adm-ok", start="0", delay="0.2", repeats="3")
    for task_id in ("adm-trap", "adm-ok"):
        cluster.wait_for(
            lambda task_id=task_id: (
                cluster.request("GET", f"/tasks/{task_id}").json()["state"]
                in ("succeeded", "failed")
            ),
            30,
            f"{task_id} to finish",
        )
    submit(cluster, "adm-newest", start="600", repeats="2")
    assert cluster.request("DELETE", "/tasks/adm-newest").status_code == 200
    yield


@pytest.fixture(scope="module")
def modules(cluster: Cluster) -> dict[str, str]:
    """Two more modules, each with tasks cancelled before their runs were
    due: one exporting many long names (three tasks), a WASI command (one
    task). Their hashes by name."""
    hashes = {}
    for name, wasm, task_ids in (
        ("exports", EXPORTS_WASM, ["mod-exports-1", "mod-exports-2", "mod-exports-3"]),
        ("wasi", WASI_WASM, ["mod-wasi"]),
    ):
        for task_id in task_ids:
            response = cluster.request(
                "POST",
                "/tasks",
                data={"id": task_id, "start": "600", "repeats": "1"},
                files={"wasm": (f"{name}.wasm", wasm)},
            )
            assert response.status_code == 201, response.text
            assert cluster.request("DELETE", f"/tasks/{task_id}").status_code == 200
        hashes[name] = hashlib.sha256(wasm).hexdigest()
    return hashes


@pytest.fixture(scope="module")
def admin_page(cluster: Cluster, browser: Any, tasks: None) -> Iterator[Any]:  # noqa: F811
    create_superuser(cluster, "ui-admin", "pw-for-ui-tests")
    page = log_in(browser, "ui-admin", "pw-for-ui-tests")
    yield page
    page.close()


def right_edge(page: Any, selector: str) -> float:
    """The rightmost edge, in CSS pixels, of the elements `selector` finds."""
    edges = page.eval_on_selector_all(
        selector, "els => els.map(e => e.getBoundingClientRect().right)"
    )
    assert edges, f"nothing matches {selector}"
    return max(edges)


def not_clipped(page: Any, selector: str) -> list[str]:
    """The elements of `selector` that an ancestor with overflow other than
    visible cuts off (the element reaches past the ancestor's box)."""
    return page.eval_on_selector_all(
        selector,
        """els => els.filter(e => {
            const box = e.getBoundingClientRect();
            for (let a = e.parentElement; a; a = a.parentElement) {
                const style = getComputedStyle(a);
                if (style.overflowX === "visible" && style.overflow === "visible") continue;
                const outer = a.getBoundingClientRect();
                if (box.right > outer.right + 0.5 || a.scrollWidth > a.clientWidth) return true;
            }
            return false;
        }).map(e => e.outerHTML.slice(0, 120))""",
    )


def test_task_page_shows_every_attempt_unclipped_and_read_only(
    admin_page: Any, tmp_path_factory: pytest.TempPathFactory
) -> None:
    page = admin_page
    page.goto(f"http://{HTTP}/admin/tasks_app/task/adm-trap/change/")
    page.screenshot(path=str(tmp_path_factory.mktemp("admin") / "task_change.png"), full_page=True)
    attempts = "#task-attempts tbody tr"
    assert page.locator(attempts).count() == 4  # 2 runs, 2 tries each
    for column in ("td.outcome", "td.text", "td.time"):
        cells = f"{attempts} {column}"
        assert page.locator(cells).first.is_visible()
        assert right_edge(page, cells) <= WIDTH, column
        assert not_clipped(page, cells) == [], column
    assert {t.strip() for t in page.locator(f"{attempts} td.outcome").all_inner_texts()} == {
        "failed"
    }
    assert all("unreachable" in t for t in page.locator(f"{attempts} td.text").all_inner_texts())
    # The runs table fits too (the old inline reached past the header).
    assert right_edge(page, "#task-runs td") <= WIDTH
    assert page.evaluate("document.documentElement.scrollWidth") <= WIDTH
    # Nothing to edit: no Save button, no text box for the description.
    assert page.locator("input[name=_save], input[name=_continue]").count() == 0
    assert page.locator("textarea, input[type=text]").count() == 0

    # A run's own page: its attempts inline fits as well, and is read-only too.
    page.click('#task-runs tr[data-run="0"] a')
    page.wait_for_selector(".inline-group")
    cells = ".inline-group tbody td"
    assert right_edge(page, cells) <= WIDTH
    assert not_clipped(page, cells) == []
    assert page.evaluate("document.documentElement.scrollWidth") <= WIDTH
    assert "unreachable" in page.inner_text(".inline-group td.field-error")
    assert page.locator("input[name=_save]").count() == 0


def test_task_list_newest_first_and_last_column_on_screen(
    admin_page: Any, tmp_path_factory: pytest.TempPathFactory
) -> None:
    page = admin_page
    page.goto(f"http://{HTTP}/admin/tasks_app/task/")
    page.screenshot(path=str(tmp_path_factory.mktemp("admin") / "task_list.png"))
    ids = page.locator("#result_list tbody th.field-id a").all_inner_texts()
    mine = [i for i in ids if i.startswith("adm-")]
    assert mine == ["adm-newest", "adm-ok", "adm-trap"]
    assert right_edge(page, "#result_list thead th:last-child") <= WIDTH
    assert right_edge(page, "#result_list tbody td:last-child") <= WIDTH
    assert not_clipped(page, "#result_list tbody td:last-child") == []
    # The cancel and rerun actions are offered on the list.
    actions = page.locator("select[name=action] option").all_inner_texts()
    assert any(a.startswith("Cancel the selected tasks") for a in actions)
    assert any(a.startswith("Run the failed runs") for a in actions)


def test_module_list_every_column_on_screen(
    admin_page: Any, modules: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> None:
    page = admin_page
    page.goto(f"http://{HTTP}/admin/tasks_app/module/")
    page.screenshot(path=str(tmp_path_factory.mktemp("admin") / "module_list.png"))
    classes = page.eval_on_selector_all(
        "#result_list thead th", "ths => ths.map(th => th.className)"
    )
    columns = [c.removeprefix("column-") for h in classes for c in h.split() if "column-" in c]
    assert columns == list(MODULE_COLUMNS), classes  # in this order, created last
    for column in MODULE_COLUMNS:
        header = f"#result_list thead th.column-{column}"
        cells = f"#result_list tbody .field-{column}"
        assert page.locator(header).is_visible(), column
        assert page.locator(cells).count() >= 4, column  # hash.wasm, trap.wasm and these two
        assert right_edge(page, header) <= WIDTH, column
        assert right_edge(page, cells) <= WIDTH, column
        assert not_clipped(page, cells) == [], column
    assert right_edge(page, "#result_list") <= WIDTH
    assert page.evaluate("document.documentElement.scrollWidth") <= WIDTH

    row = page.locator("#result_list tbody tr", has_text=modules["exports"][:12])
    assert row.count() == 1
    assert row.locator(".field-short_hash").inner_text().strip() == modules["exports"][:12]
    assert row.locator(".field-kind").inner_text().strip() == "exports run(input, difficulty)"
    assert row.locator(".field-size").inner_text().strip() == str(len(EXPORTS_WASM))
    exports = row.locator(".field-export_names").inner_text()
    assert exports.startswith(f"run, {LONG_EXPORT}, "), exports
    assert exports.rstrip().endswith(f"({len(MANY_EXPORTS) + 1} in all)"), exports
    assert row.locator(".field-task_count").inner_text().strip() == "3"
    created = page.locator("#result_list tbody td.field-created_at").all_inner_texts()
    assert [t for t in created if not TIME.match(t.strip())] == [], created
    wasi = page.locator("#result_list tbody tr", has_text=modules["wasi"][:12])
    assert wasi.locator(".field-kind").inner_text().strip() == "WASI command (_start)"
    assert wasi.locator(".field-task_count").inner_text().strip() == "1"


def test_module_page_is_read_only_and_links_its_tasks(
    admin_page: Any, modules: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> None:
    page = admin_page
    sha256 = modules["exports"]
    page.goto(f"http://{HTTP}/admin/tasks_app/module/{sha256}/change/")
    page.screenshot(
        path=str(tmp_path_factory.mktemp("admin") / "module_change.png"), full_page=True
    )
    assert page.inner_text(".field-sha256 .readonly").strip() == sha256
    assert LONG_EXPORT in page.inner_text(".field-export_names .readonly")
    for field in ("sha256", "export_names", "tasks_using_it"):
        cells = f".field-{field} .readonly"
        assert page.locator(cells).is_visible(), field
        assert right_edge(page, cells) <= WIDTH, field
        assert not_clipped(page, cells) == [], field
    assert page.evaluate("document.documentElement.scrollWidth") <= WIDTH
    # Nothing to edit, the bytes least of all: no form field, no Save, no Delete.
    assert page.locator("input:not([type=hidden]), textarea, select").count() == 0
    assert page.locator("[name=wasm], .field-wasm").count() == 0
    assert page.locator("input[name=_save], input[name=_continue], a.deletelink").count() == 0

    # Its tasks, newest first, each a link to the task's page.
    links = page.locator(".field-tasks_using_it .readonly a")
    assert links.all_inner_texts() == ["mod-exports-3", "mod-exports-2", "mod-exports-1"]
    links.first.click()
    page.wait_for_selector("#task-runs")
    assert page.url.endswith("/admin/tasks_app/task/mod-exports-3/change/")
    assert page.inner_text(".field-module .readonly").strip().startswith(sha256[:12])


def test_every_time_is_written_one_way_with_seconds(admin_page: Any) -> None:
    page = admin_page
    seen: list[str] = []
    page.goto(f"http://{HTTP}/admin/tasks_app/task/")
    seen += page.locator("#result_list td.field-received_at").all_inner_texts()
    page.goto(f"http://{HTTP}/admin/tasks_app/task/adm-trap/change/")
    seen += page.locator(".field-received_at .readonly").all_inner_texts()
    seen += page.locator("#task-runs td.time, #task-attempts td.time").all_inner_texts()
    page.goto(f"http://{HTTP}/admin/tasks_app/attempt/")
    seen += page.locator("#result_list td.field-sent_at").all_inner_texts()
    page.goto(f"http://{HTTP}/admin/cluster_app/worker/")
    seen += page.locator("#result_list td.field-last_seen").all_inner_texts()
    times = [t.strip() for t in seen if t.strip() not in ("-", "") and not t.endswith(" s")]
    assert len(times) >= 10, seen
    assert [t for t in times if not TIME.match(t)] == []


def test_apps_have_human_names(admin_page: Any) -> None:
    page = admin_page
    page.goto(f"http://{HTTP}/admin/")
    captions = [c.strip().lower() for c in page.locator("caption").all_inner_texts()]
    assert "tasks and runs" in captions and "cluster" in captions, captions
    assert not any("_app" in c for c in captions), captions
    assert "ww-scheduler admin" in page.inner_text("#site-name")


def test_favicon_is_served_for_the_admin_too(cluster: Cluster) -> None:
    """Pages that name no icon (the admin's) get the gateway's own from /favicon.ico."""
    with cluster.netns.entered(), cluster.http() as client:
        icon = client.get("/favicon.ico", follow_redirects=True)
    assert icon.status_code == 200
    assert icon.headers["content-type"].startswith("image/svg+xml")
    assert icon.content.startswith(b"<svg")
