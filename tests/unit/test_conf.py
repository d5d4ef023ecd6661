"""The typed settings objects (tasks_app/conf.py, cluster_app/conf.py,
workers/conf.py, wwproject/conf.py): each type parsed by one parser, a bad
value refused naming its variable, the request-body bound derived once,
no plain `settings.WW_X` names beside the objects, and the objects
reaching the gateway's config and its scheduler unchanged."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from cluster_app.conf import ClusterSettings, LogLevel
from cluster_app.identity import Identity
from cluster_app.multiaddr import parse_multiaddr
from tasks_app.conf import TasksSettings, WriteAuth
from tasks_app.settings_spec import MIB, EnvSettings, env_value
from workers.conf import WorkerSettings
from wwproject.conf import ProjectSettings
from wwproject.settings_table import GROUPS

PROJECT_ROOT = Path(__file__).resolve().parents[2]
ALL: tuple[type[EnvSettings], ...] = tuple(group for group, _ in GROUPS)


# -- one parser per type --------------------------------------------------------


def test_each_type_is_parsed_from_its_variable(tmp_path: Path) -> None:
    tasks = TasksSettings.from_env(
        {
            "WW_MAX_REPEATS": " 12 ",  # int
            "WW_DEFAULT_DURATION": "2.5",  # float
            "WW_READS_NEED_AUTH": "yes",  # bool
            "WW_HTTP": "0.0.0.0:9000",  # str
            "WW_TRUSTED_ORIGINS": "https://a.example, ,https://*.b.example,",  # words
            "WW_WRITES_NEED_AUTH": "False",  # choice
        }
    )
    assert tasks.max_repeats == 12
    assert tasks.default_duration == 2.5
    assert tasks.reads_need_auth is True
    assert tasks.http == "0.0.0.0:9000"
    assert tasks.trusted_origins == ("https://a.example", "https://*.b.example")
    assert tasks.writes_need_auth is WriteAuth.FALSE
    cluster = ClusterSettings.from_env(
        {"WW_STATE_DIR": str(tmp_path / "x" / ".." / "state"), "WW_LOG_LEVEL": "debug"}
    )
    assert cluster.state_dir == (tmp_path / "state").resolve()  # a path, resolved
    assert cluster.log_level is LogLevel.DEBUG


@pytest.mark.parametrize(
    ("word", "value"),
    [
        *[(w, True) for w in ("1", "true", "TRUE", "yes", "on", " On ")],
        *[(w, False) for w in ("0", "false", "False", "no", "off")],
    ],
)
def test_booleans_take_the_usual_words(word: str, value: bool) -> None:
    assert TasksSettings.from_env({"WW_READS_NEED_AUTH": word}).reads_need_auth is value
    assert env_value({"DJANGO_DEBUG": word}, "DJANGO_DEBUG", bool, not value) is value


@pytest.mark.parametrize(
    ("word", "mode"),
    [
        ("auto", WriteAuth.AUTO),
        ("AUTO", WriteAuth.AUTO),
        ("1", WriteAuth.TRUE),
        ("on", WriteAuth.TRUE),
        ("no", WriteAuth.FALSE),
        ("0", WriteAuth.FALSE),
    ],
)
def test_writes_need_auth_takes_auto_and_the_boolean_words(word: str, mode: WriteAuth) -> None:
    assert TasksSettings.from_env({"WW_WRITES_NEED_AUTH": word}).writes_need_auth is mode


def test_unset_or_blank_variables_keep_the_defaults() -> None:
    for group in ALL:
        blank = {knob.env: "  " for knob in group.knobs()}
        assert group.from_env({}) == group()
        assert group.from_env(blank) == group()


@pytest.mark.parametrize(
    ("group", "variable", "raw", "says"),
    [
        (TasksSettings, "WW_MAX_REPEATS", "lots", "WW_MAX_REPEATS must be an integer, not 'lots'"),
        (TasksSettings, "WW_PREFETCH", "6.5", "WW_PREFETCH must be an integer, not '6.5'"),
        (ClusterSettings, "WW_PING_INTERVAL", "2s", "WW_PING_INTERVAL must be a number, not '2s'"),
        (
            TasksSettings,
            "WW_READS_NEED_AUTH",
            "maybe",
            "WW_READS_NEED_AUTH must be true or false (1/0, true/false, yes/no, on/off), "
            "not 'maybe'",
        ),
        (
            TasksSettings,
            "WW_WRITES_NEED_AUTH",
            "maybe",
            "WW_WRITES_NEED_AUTH must be auto, true or false, not 'maybe'",
        ),
        (
            ClusterSettings,
            "WW_LOG_LEVEL",
            "loud",
            "WW_LOG_LEVEL must be DEBUG, INFO, WARNING or ERROR, not 'loud'",
        ),
        (WorkerSettings, "WW_RUN_MEMORY_BYTES", "1 GiB", "WW_RUN_MEMORY_BYTES must be an integer"),
        (
            ProjectSettings,
            "WW_HTTP_THREADS",
            "two",
            "WW_HTTP_THREADS must be an integer, not 'two'",
        ),
    ],
)
def test_a_bad_value_names_the_variable_and_the_value(
    group: type[EnvSettings], variable: str, raw: str, says: str
) -> None:
    with pytest.raises(ImproperlyConfigured) as refused:
        group.from_env({variable: raw})
    assert says in str(refused.value)


def test_a_bad_value_stops_the_process_naming_the_variable(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=PROJECT_ROOT,
        env={
            "PATH": "/usr/bin:/bin",
            "WW_STATE_DIR": str(tmp_path),
            "DJANGO_SETTINGS_MODULE": "wwproject.settings",
            "WW_PREFETCH": "many",
        },
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode != 0
    assert "ImproperlyConfigured: WW_PREFETCH must be an integer, not 'many'" in proc.stderr


def test_given_defaults_replace_the_spec_defaults_but_not_the_environment() -> None:
    # How the production settings make writes need a token unless told otherwise.
    prod = TasksSettings.from_env({}, writes_need_auth=WriteAuth.TRUE)
    assert prod.writes_need_auth is WriteAuth.TRUE
    told = TasksSettings.from_env({"WW_WRITES_NEED_AUTH": "auto"}, writes_need_auth=WriteAuth.TRUE)
    assert told.writes_need_auth is WriteAuth.AUTO
    with pytest.raises(TypeError, match="no settings"):
        TasksSettings.from_env({}, no_such_knob=1)


# -- one definition each ------------------------------------------------------------


def test_every_variable_is_defined_by_one_app() -> None:
    names = [knob.env for group in ALL for knob in group.knobs()]
    assert len(names) == len(set(names))
    assert all(name.startswith("WW_") for name in names)


def test_every_setting_has_a_default_and_a_doc() -> None:
    for group in ALL:
        for f in dataclasses.fields(group):  # type: ignore[arg-type]  # EnvSettings subclasses are dataclasses
            assert f.default is not dataclasses.MISSING, f.name
            assert f.metadata.get("doc"), f.name


def test_the_settings_are_the_four_objects_and_no_plain_names() -> None:
    objects = (settings.WW_TASKS, settings.WW_CLUSTER, settings.WW_WORKERS, settings.WW_PROJECT)
    assert [type(o) for o in objects] == list(ALL)
    for obj in objects:
        for knob in obj.knobs():
            # Read typed only: a plain name set by a test would be ignored.
            assert not hasattr(settings, knob.env), knob.env


def test_the_legacy_names_come_from_the_objects() -> None:
    assert settings.STATE_DIR == settings.WW_CLUSTER.state_dir
    assert settings.LOG_LEVEL == str(settings.WW_CLUSTER.log_level)
    assert settings.DATABASES["default"]["CONN_MAX_AGE"] == settings.WW_PROJECT.db_conn_max_age


def test_the_state_dir_default_is_var_in_the_project() -> None:
    # The README shows it as "`var/` in the project" (the real path is the machine's).
    assert ClusterSettings().state_dir == PROJECT_ROOT / "var"


def test_the_token_stays_out_of_the_settings_repr() -> None:
    # Django's error pages show settings; the object's repr must not carry the token.
    assert "s3cret" not in repr(TasksSettings.from_env({"WW_TOKEN": "s3cret"}))


# -- the request-body bound, derived once ---------------------------------------


def test_the_request_body_bound_is_the_module_limit_plus_one_mib() -> None:
    assert TasksSettings().request_body_max_bytes == 17 * MIB
    small = TasksSettings.from_env({"WW_MODULE_MAX_BYTES": "1000"})
    assert small.request_body_max_bytes == 1000 + MIB
    assert settings.FILE_UPLOAD_MAX_MEMORY_SIZE == settings.WW_TASKS.request_body_max_bytes


@pytest.mark.django_db  # building the application probes the REST view once
def test_the_asgi_application_bounds_bodies_by_the_derived_bound() -> None:
    from wwproject.asgi import application

    body_limit = application.application_mapping["http"]
    assert body_limit.limit == settings.WW_TASKS.request_body_max_bytes == 17 * MIB


# -- passed down unchanged -------------------------------------------------------


def _distinct_tasks_settings() -> TasksSettings:
    # Every scheduler knob different from its default and from the others, so
    # a knob passed to the wrong option shows.
    return dataclasses.replace(
        TasksSettings(),
        max_attempts=7,
        worker_max_faults=5,
        call_grace=11.0,
        default_duration=13.0,
        queue_window=17,
        prefetch=19,
        prefetch_below=0.023,
        batch=29,
        batch_seconds=0.031,
        send_ahead=0.037,
    )


def _config(**overrides: Any) -> Any:
    from cluster_app.management.commands.rungateway import gateway_config

    return gateway_config(
        identity=Identity.generate(),
        namespace="ns",
        listen=parse_multiaddr("/ip4/127.0.0.1/tcp/0"),
        discover=None,
        cluster_key=None,
        **overrides,
    )


def test_rungateway_hands_the_settings_objects_to_the_gateway(settings: Any) -> None:
    settings.WW_TASKS = _distinct_tasks_settings()
    settings.WW_CLUSTER = dataclasses.replace(ClusterSettings(), ping_interval=0.7)
    config = _config()
    assert config.tasks is settings.WW_TASKS
    assert config.cluster is settings.WW_CLUSTER


@pytest.mark.django_db
def test_the_scheduler_is_built_from_the_gateway_configs_settings(settings: Any) -> None:
    from cluster_app.gateway import GatewayNode

    settings.WW_TASKS = tasks = _distinct_tasks_settings()
    scheduler = GatewayNode(_config()).scheduler
    assert scheduler._max_attempts == tasks.max_attempts
    assert scheduler._max_faults == tasks.worker_max_faults
    assert scheduler._call_grace == tasks.call_grace
    assert scheduler._default_duration == tasks.default_duration
    assert scheduler._queue.window == tasks.queue_window
    assert scheduler._max_queue == tasks.prefetch
    assert scheduler._short_run == tasks.prefetch_below
    assert scheduler._max_batch == tasks.batch
    assert scheduler._batch_time == tasks.batch_seconds
    assert scheduler._lead == timedelta(seconds=tasks.send_ahead)
