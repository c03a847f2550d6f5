"""Accounts, their keys, plans and credits, kept in the same database as the tasks: SQL and a fake.

Callers hold an `AccountStore`; `open_accounts(url)` builds the SQL one (migrating the database on
open) and `MemoryAccountStore()` the fake. `secret_for` and `account_for_api_key` are the lookups the
API authenticates with; `Billing(store).hook` is the task store's hook that charges and refunds credits
in the task's own transaction. Nothing here imports torch or knows about HTTP.
"""

from kinema.accounts.billing import (
    AccountDisabled,
    Bill,
    Billing,
    BillingError,
    ConcurrencyExceeded,
    InsufficientCredits,
    ModelNotAllowed,
)
from kinema.accounts.credits import Charge, LedgerEntry, LedgerPage, Pack
from kinema.accounts.memory import MemoryAccountStore
from kinema.accounts.plans import ADMIN_PLAN, DEFAULT_PLAN, DEFAULT_PLANS, Plan, PlanNotFound
from kinema.accounts.prices import ModelPrice, PriceTable
from kinema.accounts.sql import SqlAccountStore, open_accounts
from kinema.accounts.store import (
    KEY_KINDS,
    ROLES,
    Account,
    AccountNotFound,
    AccountStore,
    DuplicateAccount,
    KeyInfo,
    KeyKind,
    KeyNotFound,
    KeyPair,
    Role,
    StaticKey,
)
from kinema.accounts.usage import UsageRow, write_usage_csv

__all__ = [
    "ADMIN_PLAN",
    "DEFAULT_PLAN",
    "DEFAULT_PLANS",
    "KEY_KINDS",
    "ROLES",
    "Account",
    "AccountDisabled",
    "AccountNotFound",
    "AccountStore",
    "Bill",
    "Billing",
    "BillingError",
    "Charge",
    "ConcurrencyExceeded",
    "DuplicateAccount",
    "InsufficientCredits",
    "KeyInfo",
    "KeyKind",
    "KeyNotFound",
    "KeyPair",
    "LedgerEntry",
    "LedgerPage",
    "MemoryAccountStore",
    "ModelNotAllowed",
    "ModelPrice",
    "Pack",
    "Plan",
    "PlanNotFound",
    "PriceTable",
    "Role",
    "SqlAccountStore",
    "StaticKey",
    "UsageRow",
    "open_accounts",
    "write_usage_csv",
]
