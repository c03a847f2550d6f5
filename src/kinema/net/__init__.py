"""Requests Kinema makes on a client's behalf: SSRF-safe fetching, image inputs and task callbacks.

Torch-free and below the API: it knows URLs, bytes and JSON, never tasks, accounts or models.
"""

from kinema.net.fetch import BlockedURL, FetchError, FetchPolicy, address_problem, check_target, fetch, post
from kinema.net.images import InputError, InputImage, load_image_input
from kinema.net.webhooks import CallbackSender, sign_headers, verify

__all__ = [
    "BlockedURL",
    "CallbackSender",
    "FetchError",
    "FetchPolicy",
    "InputError",
    "InputImage",
    "address_problem",
    "check_target",
    "fetch",
    "load_image_input",
    "post",
    "sign_headers",
    "verify",
]
