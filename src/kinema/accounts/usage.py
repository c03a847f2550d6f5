"""Usage reports: one row per charge of a task (what was generated, what it cost), and a CSV writer.

A charge that was refunded (the task failed or was cancelled) shows its refund and generated nothing.
The rows come from the ledger's charge records, which outlive the tasks themselves.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from datetime import datetime
from typing import TextIO

from kinema.accounts.credits import Charge
from kinema.accounts.prices import IMAGE_KINDS


@dataclass(frozen=True, slots=True)
class UsageRow:
    """One charge: `seconds` of video or `images` generated (0 once refunded) and the credits it cost."""

    account_id: str
    account_name: str
    task_id: str
    seq: int
    kind: str
    model: str
    mode: str
    seconds: float
    images: int
    credits_charged: int
    credits_refunded: int
    credits: int
    charged_at: datetime


USAGE_COLUMNS: tuple[str, ...] = tuple(field.name for field in fields(UsageRow))


def usage_rows(records: Iterable[Charge], names: Mapping[str, str]) -> list[UsageRow]:
    """One row per charge among `records` (charges and refunds), oldest first; account names by id."""
    records = list(records)
    refunds = {(r.task_id, r.seq): r for r in records if r.kind == "refund"}
    charges = sorted(
        (r for r in records if r.kind == "charge"), key=lambda r: (r.created_at, r.task_id, r.seq)
    )
    rows = []
    for charge in charges:
        refund = refunds.get((charge.task_id, charge.seq))
        kept = refund is None
        image = charge.task_kind in IMAGE_KINDS
        rows.append(
            UsageRow(
                account_id=charge.account_id,
                account_name=names.get(charge.account_id, ""),
                task_id=charge.task_id,
                seq=charge.seq,
                kind=charge.task_kind,
                model=charge.model,
                mode=charge.mode,
                seconds=charge.seconds if kept and not image else 0.0,
                images=charge.slots if kept and image else 0,
                credits_charged=charge.credits,
                credits_refunded=0 if refund is None else refund.credits,
                credits=charge.credits - (0 if refund is None else refund.credits),
                charged_at=charge.created_at,
            )
        )
    return rows


def write_usage_csv(rows: Sequence[UsageRow], out: TextIO) -> None:
    """Write `rows` as CSV with a header line; times in ISO 8601 UTC."""
    writer = csv.DictWriter(out, fieldnames=USAGE_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        record = asdict(row)
        record["charged_at"] = row.charged_at.isoformat().replace("+00:00", "Z")
        writer.writerow(record)
