"""Billing through the task store's hook, on every backend: credits move in the task's own transaction,
charged once at create, refunded once on failure or cancel, charged again on a user's retry, and a task
the account may not have is refused with its Kling code before anything is written."""

from __future__ import annotations

import io
import re
from datetime import timedelta

import pytest
from billingkit import Billed

from kinema.accounts import (
    AccountDisabled,
    BillingError,
    ConcurrencyExceeded,
    InsufficientCredits,
    ModelNotAllowed,
    Plan,
    write_usage_csv,
)
from kinema.jobs import Task


def charges(billed: Billed, account_id: str) -> list[tuple[str, int, str | None, int]]:
    """The account's charge and refund entries, oldest first: (kind, amount, task id, seq)."""
    entries = billed.accounts.ledger_history(account_id, limit=1000).entries
    return [(e.kind, e.amount, e.task_id, e.seq) for e in reversed(entries) if e.task_id is not None]


def run(billed: Billed, task: Task) -> Task:
    claimed = billed.tasks.claim("worker-1", 60)
    assert claimed is not None and claimed.task_id == task.task_id
    return claimed


# --- charge at create -----------------------------------------------------------------------------------


def test_a_create_charges_its_price(billed: Billed) -> None:
    acme = billed.member(credits=30)

    task = billed.video(acme, credits=12)

    assert billed.balance(acme) == 18
    assert charges(billed, acme.account_id) == [("charge", -12, task.task_id, 1)]


def test_a_create_the_account_cannot_pay_for_creates_nothing(billed: Billed) -> None:
    acme = billed.member(credits=5)

    with pytest.raises(InsufficientCredits, match="costs 10 credits but account 'acme' has 5 left") as error:
        billed.video(acme, credits=10)

    assert error.value.code == 1102
    assert billed.tasks.list(acme.account_id).total == 0
    assert billed.balance(acme) == 5 and charges(billed, acme.account_id) == []


def test_a_charge_takes_the_soonest_expiring_packs_first_and_splits(billed: Billed) -> None:
    acme = billed.member()
    forever = billed.accounts.grant_credits(acme.account_id, 5)
    week = billed.accounts.purchase_credits(acme.account_id, 3, days=7)
    day = billed.accounts.grant_credits(acme.account_id, 4, days=1)

    billed.video(acme, credits=10)

    entries = billed.accounts.ledger_history(acme.account_id).entries
    taken = [(e.pack_id, e.amount) for e in reversed(entries) if e.kind == "charge"]
    assert taken == [(day.pack_id, -4), (week.pack_id, -3), (forever.pack_id, -3)]
    assert billed.balance(acme) == 2


def test_the_free_plans_daily_credits_pay_for_a_task(billed: Billed) -> None:
    free = billed.member("newcomer", plan="free")

    billed.video(free, credits=10)

    assert billed.balance(free) == 56


def test_an_unmetered_plan_is_never_charged(billed: Billed) -> None:
    admin = billed.accounts.ensure_account("admin", role="admin")

    billed.video(admin, credits=1000, mode="pro")

    assert billed.balance(admin) == 0 and charges(billed, admin.account_id) == []
    [row] = billed.accounts.usage(billed.clock.now() - timedelta(days=1), billed.clock.now() + timedelta(1))
    assert (row.account_name, row.credits, row.seconds, row.mode) == ("admin", 0, 5.0, "pro")


def test_without_a_bill_the_price_table_prices_the_request(billed: Billed) -> None:
    acme = billed.member(credits=10)

    def create(model: str) -> Task:
        request = {"prompt": "x", "duration": "5", "mode": "std"}
        return billed.tasks.create(
            account_id=acme.account_id, kind="text2video", model=model, request=request
        )

    create("builtin")  # the built-in model is free
    assert billed.balance(acme) == 10
    create("wan")  # any other model: 2 credits a second in std
    assert billed.balance(acme) == 0


# --- refusals -------------------------------------------------------------------------------------------


def test_a_disabled_account_cannot_create(billed: Billed) -> None:
    acme = billed.member(credits=30)
    billed.accounts.set_disabled(acme.account_id, True)

    with pytest.raises(AccountDisabled, match="account 'acme' is disabled; ask an administrator") as error:
        billed.video(acme)

    assert error.value.code == 1100 and billed.balance(acme) == 30


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"model": "ltx"}, "model 'ltx' is not included in plan 'narrow' .it allows: wan."),
        ({"mode": "pro"}, "mode 'pro' is not included in plan 'narrow'; use mode std"),
        ({"seconds": 15.0}, re.escape("a 15 s video is longer than plan 'narrow' allows (10 s)")),
        ({"total_seconds": 25.0}, "a 25 s video is longer than plan 'narrow' allows"),
    ],
)
def test_the_plan_limits_models_modes_and_length(
    billed: Billed, change: dict[str, object], message: str
) -> None:
    billed.accounts.upsert_plan(Plan("narrow", allowed_models=("wan",), max_duration_s=10.0))
    acme = billed.member(credits=100, plan="narrow")
    billed.video(acme, credits=1)

    with pytest.raises(ModelNotAllowed, match=message) as error:
        billed.video(acme, credits=1, **change)  # type: ignore[arg-type]

    assert error.value.code == 1103 and isinstance(error.value, BillingError)
    assert billed.balance(acme) == 99 and billed.tasks.list(acme.account_id).total == 1


def test_video_slots_count_live_tasks_including_the_new_one(billed: Billed) -> None:
    acme = billed.member(credits=100)  # the metered plan: 2 video slots
    first = billed.video(acme, credits=1)
    run(billed, first)
    billed.video(acme, credits=1)

    with pytest.raises(ConcurrencyExceeded, match="parallel task over resource pack limit") as error:
        billed.video(acme, credits=1)

    assert error.value.code == 1303
    assert "2 of the 2 in plan 'metered' are in use" in str(error.value)
    billed.tasks.complete(first.task_id, "worker-1", [])
    billed.video(acme, credits=1)
    assert billed.balance(acme) == 97


def test_an_image_task_takes_n_image_slots_apart_from_video(billed: Billed) -> None:
    acme = billed.member(credits=100)  # the metered plan: 4 image slots, 2 video slots
    billed.video(acme, credits=1)
    billed.video(acme, credits=1)
    three = billed.images(acme, 3)

    with pytest.raises(ConcurrencyExceeded, match=re.escape("this task needs 2 image slot(s), 3 of the 4")):
        billed.images(acme, 2)

    billed.images(acme, 1)
    billed.tasks.request_cancel(three.task_id, acme.account_id)
    billed.images(acme, 3)


def test_another_accounts_tasks_take_none_of_my_slots(billed: Billed) -> None:
    acme, rival = billed.member(credits=10), billed.member("rival", credits=10)
    billed.video(rival, credits=1)
    billed.video(rival, credits=1)

    billed.video(acme, credits=1)
    billed.video(acme, credits=1)

    assert billed.balance(acme) == 8 and billed.balance(rival) == 8


# --- refunds and retries --------------------------------------------------------------------------------


def test_a_failed_task_is_refunded_once_even_if_the_hook_repeats(billed: Billed) -> None:
    acme = billed.member(credits=30)
    task = billed.video(acme, credits=10)
    run(billed, task)

    failed = billed.tasks.fail(task.task_id, "worker-1", error="out of memory", retryable=False)
    billed.hook(billed.event(failed, "failed"))
    billed.hook(billed.event(failed, "cancelled"))

    assert failed.status == "failed" and billed.balance(acme) == 30
    assert charges(billed, acme.account_id) == [
        ("charge", -10, task.task_id, 1),
        ("refund", 10, task.task_id, 1),
    ]


def test_a_refund_reverses_exactly_the_packs_the_charge_took(billed: Billed) -> None:
    acme = billed.member()
    day = billed.accounts.grant_credits(acme.account_id, 4, days=1)
    forever = billed.accounts.grant_credits(acme.account_id, 10)
    task = billed.video(acme, credits=6)

    billed.tasks.request_cancel(task.task_id, acme.account_id)

    entries = billed.accounts.ledger_history(acme.account_id).entries
    moves = sorted((e.kind, e.pack_id, e.amount) for e in entries if e.task_id == task.task_id)
    assert moves == sorted(
        [
            ("charge", day.pack_id, -4),
            ("charge", forever.pack_id, -2),
            ("refund", day.pack_id, 4),
            ("refund", forever.pack_id, 2),
        ]
    )


def test_a_repeated_created_call_charges_nothing_more(billed: Billed) -> None:
    acme = billed.member(credits=30)
    task = billed.video(acme, credits=10)

    billed.hook(billed.event(task, "created"))
    billed.hook(billed.event(task, "requeued"))

    assert billed.balance(acme) == 20 and len(charges(billed, acme.account_id)) == 1


def test_a_retried_task_is_charged_again_under_a_new_seq(billed: Billed) -> None:
    acme = billed.member(credits=30)
    task = billed.video(acme, credits=10)
    billed.tasks.request_cancel(task.task_id, acme.account_id)

    retried = billed.tasks.retry(task.task_id, acme.account_id)

    assert retried.status == "submitted" and billed.balance(acme) == 20
    assert charges(billed, acme.account_id) == [
        ("charge", -10, task.task_id, 1),
        ("refund", 10, task.task_id, 1),
        ("charge", -10, task.task_id, 2),
    ]
    run(billed, retried)
    billed.tasks.fail(task.task_id, "worker-1", error="boom", retryable=False)
    assert billed.balance(acme) == 30 and charges(billed, acme.account_id)[-1] == (
        "refund",
        10,
        task.task_id,
        2,
    )


def test_a_retry_the_account_cannot_pay_for_leaves_the_task_as_it_was(billed: Billed) -> None:
    acme = billed.member(credits=10)
    task = billed.video(acme, credits=10)
    billed.tasks.request_cancel(task.task_id, acme.account_id)
    billed.video(acme, credits=10)  # spends the refund

    with pytest.raises(InsufficientCredits):
        billed.tasks.retry(task.task_id, acme.account_id)

    again = billed.tasks.get(task.task_id, acme.account_id)
    assert again is not None and again.status == "cancelled" and billed.balance(acme) == 0


def test_an_attempt_that_will_be_retried_keeps_its_charge_and_success_settles_it(billed: Billed) -> None:
    acme = billed.member(credits=30)
    task = billed.video(acme, credits=10)
    run(billed, task)
    billed.tasks.fail(task.task_id, "worker-1", error="flaky", retryable=True)
    run(billed, task)

    done = billed.tasks.complete(task.task_id, "worker-1", [{"key": "v.mp4"}])
    billed.hook(billed.event(done, "succeed"))

    assert done.status == "succeed" and billed.balance(acme) == 20
    assert charges(billed, acme.account_id) == [("charge", -10, task.task_id, 1)]


# --- usage ----------------------------------------------------------------------------------------------


def test_usage_rows_show_what_was_generated_and_what_it_cost(billed: Billed) -> None:
    acme, rival = billed.member(credits=100), billed.member("rival", credits=100)
    start = billed.clock.now()
    kept = billed.video(acme, credits=10, seconds=5.0)
    billed.clock.advance(1)
    refunded = billed.video(acme, credits=35, seconds=5.0, mode="pro")
    billed.tasks.request_cancel(refunded.task_id, acme.account_id)
    billed.clock.advance(1)
    images = billed.images(rival, 3, credits=1)
    end = billed.clock.advance(1)

    rows = billed.accounts.usage(start, end)
    assert [(r.account_name, r.task_id, r.mode, r.seconds, r.images, r.credits) for r in rows] == [
        ("acme", kept.task_id, "std", 5.0, 0, 10),
        ("acme", refunded.task_id, "pro", 0.0, 0, 0),
        ("rival", images.task_id, "std", 0.0, 3, 3),
    ]
    assert (rows[1].credits_charged, rows[1].credits_refunded) == (35, 35)
    assert [r.task_id for r in billed.accounts.usage(start, end, account_id=rival.account_id)] == [
        images.task_id
    ]
    assert billed.accounts.usage(start, start + timedelta(milliseconds=500)) == rows[:1]

    out = io.StringIO()
    write_usage_csv(rows, out)
    lines = out.getvalue().splitlines()
    assert lines[0] == (
        "account_id,account_name,task_id,seq,kind,model,mode,seconds,images,"
        "credits_charged,credits_refunded,credits,charged_at"
    )
    assert (
        lines[1]
        == f"{acme.account_id},acme,{kept.task_id},1,text2video,wan,std,5.0,0,10,0,10,2025-01-01T00:00:00Z"
    )
    assert len(lines) == 4
