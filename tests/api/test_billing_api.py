"""Plans, credits and limits through the API: charge at create, refund once, 1100/1102/1103/1302/1303,
priority by plan, the account and admin surfaces, and accounts that cannot see each other."""

from __future__ import annotations

import csv
import io
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import jwt
import pytest
from apikit import Api, make_api

from kinema.accounts import MemoryAccountStore

TASKS = "/api/v1/tasks"


@dataclass
class Billed:
    api: Api
    accounts: MemoryAccountStore
    keys: dict[str, tuple[str, str]]  # account name -> (access key, secret key)
    ids: dict[str, str]

    def headers(self, name: str) -> dict[str, str]:
        access, secret = self.keys[name]
        now = int(time.time())
        token = jwt.encode({"iss": access, "exp": now + 600, "nbf": now - 5}, secret, algorithm="HS256")
        return {"Authorization": f"Bearer {token}"}

    def create(self, name: str, **body: object) -> tuple[int, dict[str, object]]:
        payload = {"kind": "text2video", "model": "fake", "prompt": "x", **body}
        response = self.api.client.post(TASKS, json=payload, headers=self.headers(name))
        return response.status_code, response.json()

    def balance(self, name: str) -> int:
        return int(
            self.api.client.get("/api/v1/account", headers=self.headers(name)).json()["data"]["balance"]
        )


@pytest.fixture
def billed(tmp_path: Path) -> Iterator[Billed]:
    accounts = MemoryAccountStore()
    keys, ids = {}, {}
    for name, role in (("admin", "admin"), ("alice", "member"), ("bob", "member")):
        account = accounts.ensure_account(name, role=role)  # type: ignore[arg-type]
        pair = accounts.create_key_pair(account.account_id)
        keys[name], ids[name] = (pair.access_key, pair.secret_key), account.account_id
    for api in make_api(tmp_path, accounts):
        yield Billed(api, accounts, keys, ids)


def test_charge_at_create_and_refund_once_on_cancel(billed: Billed) -> None:
    start = billed.balance("alice")
    assert start == 66  # the free plan's daily credits, granted on first look
    status, body = billed.create("alice", duration=5)
    assert status == 200, body
    assert billed.balance("alice") == start - 10  # 2 credits a second, std
    task_id = body["data"]["id"]  # type: ignore[index]
    billed.api.client.post(f"{TASKS}/{task_id}/cancel", headers=billed.headers("alice"))
    assert billed.balance("alice") == start
    billed.api.client.post(f"{TASKS}/{task_id}/cancel", headers=billed.headers("alice"))
    assert billed.balance("alice") == start  # refunded once
    ledger = billed.api.client.get("/api/v1/account/ledger", headers=billed.headers("alice")).json()["data"]
    kinds = [e["kind"] for e in ledger["entries"]]
    assert kinds.count("charge") == 1 and kinds.count("refund") == 1
    # A retry charges again; the finished task keeps its charge.
    billed.api.client.post(f"{TASKS}/{task_id}/retry", headers=billed.headers("alice"))
    assert billed.balance("alice") == start - 10
    billed.api.drain()
    assert billed.balance("alice") == start - 10


def test_repeated_external_id_is_charged_once(billed: Billed) -> None:
    assert billed.create("alice", external_task_id="order-7")[0] == 200
    status, body = billed.create("alice", external_task_id="order-7")
    assert (status, body["code"]) == (400, 1201)
    assert billed.balance("alice") == 56


def test_concurrency_limit_is_1303_and_frees_up(billed: Billed) -> None:
    assert billed.create("alice")[0] == 200
    status, body = billed.create("alice")
    assert ((status, body["code"]) == (429, 1303) and "parallel" in str(body["message"]).lower()) or body
    images = billed.create("alice", kind="text2image", n=2)
    assert images[0] == 200  # image slots are separate: 2 of them
    billed.api.drain()
    assert billed.create("alice")[0] == 200
    account = billed.api.client.get("/api/v1/account", headers=billed.headers("alice")).json()["data"]
    assert account["concurrency"]["video"] == {"used": 1, "limit": 1}


def test_credits_exhausted_is_1102_mode_not_in_plan_is_1103(billed: Billed) -> None:
    status, body = billed.create("alice", duration=40)
    assert (status, body["code"]) == (403, 1103) and "10 s" in str(body["message"]), body
    status, body = billed.create("alice", mode="pro")
    assert (status, body["code"]) == (403, 1103), body
    admin = billed.headers("admin")
    billed.api.client.put("/api/v1/admin/plans/free", json={"daily_free_credits": 5}, headers=admin)
    status, body = billed.create("bob", duration=5)  # 10 credits > 5
    assert (status, body["code"]) == (429, 1102), body
    assert billed.balance("bob") == 5 and billed.api.store.counts_by_status()["submitted"] == 0


def test_disabled_account_and_rate_limit(billed: Billed) -> None:
    admin = billed.headers("admin")
    billed.api.client.put(
        "/api/v1/admin/plans/free", json={"requests_per_minute": 2, "image_concurrency": 9}, headers=admin
    )
    assert billed.create("bob", kind="text2image")[0] == 200
    assert billed.create("bob", kind="text2image")[0] == 200
    status, body = billed.create("bob", kind="text2image")
    assert (status, body["code"]) == (429, 1302), body
    billed.api.client.post(f"/api/v1/admin/accounts/{billed.ids['alice']}/disable", headers=admin)
    # Disabled accounts' keys stop authenticating (401); the ledger refuses their creates too (1100).
    assert billed.api.client.get(TASKS, headers=billed.headers("alice")).status_code == 401


def test_plan_priority_reaches_the_queue(billed: Billed) -> None:
    admin = billed.headers("admin")
    answer = billed.api.client.post(
        f"/api/v1/admin/accounts/{billed.ids['bob']}/plan", json={"plan": "creator"}, headers=admin
    )
    assert answer.status_code == 200, answer.text
    billed.api.client.post(
        f"/api/v1/admin/accounts/{billed.ids['bob']}/credits", json={"credits": 100}, headers=admin
    )
    _, body = billed.create("bob", mode="pro", duration=5)
    task = billed.api.store.get(body["data"]["id"], billed.ids["bob"])  # type: ignore[index]
    assert task is not None and task.priority == 1 and task.request["billing"]["credits"] == 35


def test_admin_surface_and_usage_csv(billed: Billed) -> None:
    admin = billed.headers("admin")
    member = billed.headers("alice")
    assert billed.api.client.get("/api/v1/admin/accounts", headers=member).json()["code"] == 1103
    created = billed.api.client.post(
        "/api/v1/admin/accounts", json={"name": "carol", "plan": "pro"}, headers=admin
    )
    carol = created.json()["data"]
    assert carol["plan"]["name"] == "pro"
    key = billed.api.client.post(
        f"/api/v1/admin/accounts/{carol['account_id']}/keys", json={"kind": "static"}, headers=admin
    )
    api_key = key.json()["data"]["api_key"]
    granted = billed.api.client.post(
        f"/api/v1/admin/accounts/{carol['account_id']}/credits",
        json={"credits": 500, "kind": "purchase"},
        headers=admin,
    )
    assert granted.json()["data"]["account"]["balance"] >= 500
    made = billed.api.client.post(
        TASKS,
        json={"kind": "text2video", "model": "fake", "prompt": "x"},
        headers={"Authorization": f"Bearer {api_key}"},
    )
    assert made.status_code == 200, made.text
    billed.api.drain()
    text = billed.api.client.get("/api/v1/admin/usage", headers=admin).text
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [
        (r["account_name"], r["model"], r["mode"], float(r["seconds"]), int(r["credits"])) for r in rows
    ] == [("carol", "fake", "std", 5.0, 10)]
    packs = billed.api.client.get(
        "/account/costs",
        params={"start_time": 0, "end_time": int(time.time() * 1000) + 1},
        headers={"Authorization": f"Bearer {api_key}"},
    ).json()["data"]["resource_pack_subscribe_infos"]
    assert any(p["total_quantity"] == 500 and p["resource_pack_type"] == "decreasing_total" for p in packs), (
        packs
    )
    spent = sum(p["total_quantity"] - p["remaining_quantity"] for p in packs)
    assert spent == 10, packs  # drawn from the pack that expires first (this month's allowance)
    keys = billed.api.client.get(f"/api/v1/admin/accounts/{carol['account_id']}/keys", headers=admin).json()[
        "data"
    ]["keys"]
    revoked = billed.api.client.delete(
        f"/api/v1/admin/accounts/{carol['account_id']}/keys/{keys[0]['key_id']}", headers=admin
    )
    assert revoked.json()["data"]["revoked_at"] is not None


def test_accounts_see_nothing_of_each_other(billed: Billed) -> None:
    _, body = billed.create("alice")
    task_id = body["data"]["id"]  # type: ignore[index]
    bob = billed.headers("bob")
    assert billed.api.client.get(f"{TASKS}/{task_id}", headers=bob).status_code == 404
    ledger = billed.api.client.get("/api/v1/account/ledger", headers=bob).json()["data"]
    assert all(e["task_id"] != task_id for e in ledger["entries"])
    usage = billed.api.client.get("/api/v1/account/usage", headers=bob).json()["data"]["rows"]
    assert usage == []
    keys = billed.api.client.get("/api/v1/account/keys", headers=bob).json()["data"]["keys"]
    assert {k["access_key"] for k in keys} == {billed.keys["bob"][0]}
    alice_key = billed.api.client.get("/api/v1/account/keys", headers=billed.headers("alice")).json()["data"][
        "keys"
    ][0]
    assert (
        billed.api.client.delete(f"/api/v1/account/keys/{alice_key['key_id']}", headers=bob).status_code
        == 404
    )


def test_member_keys_and_webhook_secret(billed: Billed) -> None:
    alice = billed.headers("alice")
    made = billed.api.client.post("/api/v1/account/keys", json={"kind": "pair"}, headers=alice).json()["data"]
    assert made["secret_key"].startswith("sk_")
    listed = billed.api.client.get("/api/v1/account/keys", headers=alice).json()["data"]["keys"]
    assert len(listed) == 2 and all("secret" not in k for k in listed)
    secret = billed.api.client.post("/api/v1/account/webhook-secret", headers=alice).json()["data"][
        "webhook_secret"
    ]
    assert secret.startswith("whsec_") and billed.accounts.webhook_secret(billed.ids["alice"]) == secret


def test_every_draw_is_charged(billed: Billed) -> None:
    assert billed.create("alice", duration=5, n=2)[0] == 200
    assert billed.balance("alice") == 66 - 2 * 10
    assert billed.create("alice", kind="text2image", n=2)[0] == 200
    assert billed.balance("alice") == 66 - 20 - 2
