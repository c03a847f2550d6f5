"""Schemathesis over the app's own OpenAPI document: no input makes the server answer 5xx.

Every operation gets schemathesis' deterministic coverage cases (boundaries, wrong types, missing and
unexpected fields, unexpected methods) and a derandomized Hypothesis run of positive and negative
examples, sent by an admin with billing on, so the account and admin surfaces are reached too. Each
response must be under 500, match the status codes and schemas the document declares, and, when it is an
error, wear the Kling envelope with the HTTP status that KLING_API.md §8 assigns to its code. Counts are
asserted so that the run can never pass empty.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
import pytest
import schemathesis
from apikit import Api, make_api
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis import Case, GenerationMode
from schemathesis.checks import (  # built-ins, loaded lazily by the module's __getattr__
    content_type_conformance,
    negative_data_rejection,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.python import asgi

from kinema.accounts import MemoryAccountStore, Plan

EXAMPLES = 25  # per operation and generation mode; derandomized, so every run sends the same requests
MIN_OPERATIONS = 44  # what the document listed when this was written; it may only grow
PLAN = "schema-fuzz-unlimited"

# KLING_API.md §8, written out again here so that the server's own table is checked, not trusted.
STATUS_OF_CODE = {
    **dict.fromkeys((1000, 1001, 1002, 1003, 1004), 401),
    **dict.fromkeys((1100, 1102, 1302, 1303), 429),
    1103: 403,
    **dict.fromkeys((1200, 1201, 1301), 400),
    **dict.fromkeys((1202, 1203), 404),
    5000: 500,
    5001: 503,
    5002: 504,
}
METHODS = {"get", "put", "post", "delete", "patch"}
ENVELOPED = ("/v1/", "/api/v1/", "/account/")  # on success /healthz, /readyz and /media do not

# Checks that hold for every request. A positive example is not expected to succeed (random ids do
# not exist, random base64 is not an image), so positive_data_acceptance is not among them.
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
# Usage reports answer JSON or text/csv (format=csv); both are documented.
CSV_REPORTS = ("GET /api/v1/account/usage", "GET /api/v1/admin/usage")


def documented_operations() -> list[str]:
    """Every operation in the app's OpenAPI document (/metrics and the studio are left out of it)."""
    with tempfile.TemporaryDirectory() as tmp:
        for api in make_api(Path(tmp)):
            paths = api.client.get("/openapi.json").json()["paths"]
    return sorted(
        f"{method.upper()} {path}" for path, ops in paths.items() for method in ops if method in METHODS
    )


OPERATIONS = documented_operations()

# Known 500s, each pinned down by a strict xfail in test_bad_input.py. Whether a derandomized run meets
# one depends on Hypothesis' internals, so they are not strict here; remove an entry with its bug.
KNOWN_500: dict[str, str] = {}


def with_known_500s(labels: list[str]) -> list[Any]:
    return [
        pytest.param(label, marks=pytest.mark.xfail(strict=False, reason=KNOWN_500[label]))
        if label in KNOWN_500
        else label
        for label in labels
    ]


@dataclass
class Fuzz:
    api: Api
    schema: Any  # schemathesis' OpenApiSchema
    client: asgi.ASGIClient
    access_key: str
    secret_key: str

    def auth(self) -> dict[str, str]:
        now = int(time.time())
        claims = {"iss": self.access_key, "exp": now + 600, "nbf": now - 5}
        return {"Authorization": f"Bearer {jwt.encode(claims, self.secret_key, algorithm='HS256')}"}


@pytest.fixture(scope="module")
def fuzz(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fuzz]:
    """The app with billing on, called by an admin on an unmetered plan without rate or slot limits."""
    accounts = MemoryAccountStore()
    accounts.upsert_plan(
        Plan(PLAN, video_concurrency=10**6, image_concurrency=10**6, allowed_modes=("std", "pro"),
             max_duration_s=180.0, requests_per_minute=0, metered=False)
    )  # fmt: skip
    admin = accounts.ensure_account("schema-fuzz-admin", role="admin", plan=PLAN)
    pair = accounts.create_key_pair(admin.account_id)
    for api in make_api(tmp_path_factory.mktemp("fuzz"), accounts):
        app: Any = api.client.app
        schema = schemathesis.openapi.from_asgi("/openapi.json", app)
        with asgi.get_client(app) as client:
            yield Fuzz(api, schema, client, pair.access_key, pair.secret_key)


def operation(fuzz: Fuzz, label: str) -> Any:
    method, path = label.split(" ", 1)
    return fuzz.schema[path][method]


def check_response(case: Case[Any], response: Any) -> None:
    """The built-in checks, then the Kling envelope: §8's status for an error's code, code 0 on success."""
    negative = case.meta is not None and case.meta.generation.mode == GenerationMode.NEGATIVE
    checks = CHECKS + ([negative_data_rejection] if negative else [])
    content_type = response.headers.get("content-type", [""])[0]  # schemathesis keeps a list per header
    case.validate_response(response, checks=checks)
    assert response.status_code < 500, response.text
    if response.status_code >= 400:  # every error, on every path, wears the envelope
        body = response.json()
        assert set(body) == {"code", "message", "request_id"}, body
        assert body["code"] in STATUS_OF_CODE, body
        assert response.status_code == STATUS_OF_CODE[body["code"]], (response.status_code, body)
        assert body["message"] and body["request_id"], body
    elif case.path.startswith(ENVELOPED) and content_type == "application/json":
        body = response.json()
        assert body["code"] == 0 and body["message"] == "SUCCEED" and "data" in body, body


def send(fuzz: Fuzz, case: Case[Any]) -> None:
    check_response(case, case.call(session=fuzz.client, headers=fuzz.auth()))


def still_serving(fuzz: Fuzz) -> None:
    api = fuzz.api
    assert api.client.get("/healthz").json() == {"status": "ok"}
    created = api.client.post("/v1/videos/text2video", json={"prompt": "still here"}, headers=fuzz.auth())
    assert created.status_code == 200 and created.json()["data"]["task_status"] == "submitted", created.text


def negatable(op: Any) -> bool:
    """Negative examples need a query parameter or a body to break; free-form path strings cannot be."""
    return bool(len(op.query) or op.body)


def run_examples(fuzz: Fuzz, op: Any, mode: GenerationMode) -> int:
    """Send a derandomized run of `mode` examples for `op`; returns how many were sent."""
    sent = 0

    @given(case=op.as_strategy(generation_mode=mode))
    @settings(
        max_examples=EXAMPLES,
        derandomize=True,
        phases=[Phase.explicit, Phase.generate],  # no shrinking: a failure shows its first example, fast
        database=None,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large],
    )
    def examples(case: Case[Any]) -> None:
        nonlocal sent
        send(fuzz, case)
        sent += 1

    examples()
    return sent


def test_every_operation_is_fuzzed(fuzz: Fuzz) -> None:
    found = [result.ok().label for result in fuzz.schema.get_all_operations()]
    assert sorted(found) == OPERATIONS  # schemathesis loads exactly what the tests below are made for
    assert len(OPERATIONS) >= MIN_OPERATIONS, OPERATIONS


@pytest.mark.parametrize("label", OPERATIONS)
def test_coverage_cases_never_fail_the_server(fuzz: Fuzz, label: str) -> None:
    op = operation(fuzz, label)
    config = fuzz.schema.config.generation_for(operation=op)
    ran = 0
    for case in fuzz.schema.iter_coverage_cases(
        op, generation_modes=list(GenerationMode), generation_config=config
    ):
        send(fuzz, case)
        ran += 1
    assert ran >= 2, f"only {ran} coverage cases for {label}"
    still_serving(fuzz)


@pytest.mark.parametrize("label", with_known_500s(OPERATIONS))
def test_random_examples_never_fail_the_server(fuzz: Fuzz, label: str) -> None:
    op = operation(fuzz, label)
    modes = [GenerationMode.POSITIVE] + ([GenerationMode.NEGATIVE] if negatable(op) else [])
    for mode in modes:
        sent = run_examples(fuzz, op, mode)
        wanted = EXAMPLES if op.path_parameters or negatable(op) else 1  # one request is all there is
        assert sent >= wanted, f"{label} {mode.value}: {sent} examples, wanted {wanted}"
    still_serving(fuzz)


def test_csv_usage_is_documented(fuzz: Fuzz) -> None:
    for label in CSV_REPORTS:
        assert "text/csv" in operation(fuzz, label).definition.raw["responses"]["200"]["content"], label
