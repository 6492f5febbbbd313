"""Reminder job names, key base and data wrapping, without a store."""

from __future__ import annotations

from google.protobuf import wrappers_pb2

from pylotto.capabilities.actors.api import ActorRef
from pylotto.capabilities.actors.reminders import (
    BYTES_TYPE_URL,
    data_of,
    job_name,
    key_base,
    payload_of,
    split_job_name,
)
from pylotto.capabilities.scheduler.job import validate_name


def test_job_names_split_back_into_actor_and_name() -> None:
    actor = ActorRef("Counter", "a-1")
    assert job_name(actor, "nightly") == "Counter||a-1||nightly"
    assert split_job_name("Counter||a-1||nightly") == (actor, "nightly")
    assert split_job_name("T||with||bars||r") == (ActorRef("T", "with||bars"), "r")
    validate_name(job_name(ActorRef("DemoActor", "1"), "demo_reminder"))  # the SDK's example


def test_the_key_base_is_apart_from_the_jobs_apis() -> None:
    assert key_base("app") == "_scheduler.app.actors."
    assert not key_base("app").startswith("_scheduler.app.job.")


def test_data_is_kept_as_a_bytes_value_and_given_back_as_it_came() -> None:
    payload = payload_of(b'{"a":1}')
    assert payload is not None and payload.type_url == BYTES_TYPE_URL
    assert wrappers_pb2.BytesValue.FromString(payload.value).value == b'{"a":1}'
    assert data_of(payload.type_url, payload.value) == b'{"a":1}'
    assert payload_of(b"") is None
    assert data_of("type.googleapis.com/other", b"raw") == b"raw"
