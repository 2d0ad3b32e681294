"""The order service: places orders and records what happened."""

import ldclient
from ldclient import Context

PAYMENT_FAILED = "payment-failed"


def place_order(user_key: str, total: float, charge) -> None:
    context = Context.builder(user_key).kind("user").build()
    client = ldclient.get()
    if not charge(total):
        client.track(PAYMENT_FAILED, context)
        return
    # order-placed measures both conversion (order-placed) and revenue (order-value)
    client.track("order-placed", context, metric_value=total)
