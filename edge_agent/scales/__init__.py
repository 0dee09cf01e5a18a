"""Scales at the station: every parcel scan weighed, the weight checked against the return.

Theory of operation. A `ScaleComponent` per configured scale runs its driver (drivers/scales/) for
as long as the agent runs, polling or listening, and keeps the last reading as one immutable
`Latest` that it swaps whole. Its state (`ok`, `motion`, `overload`, `underload`, `offline`) is the
last reading's, or `offline` when the port is gone or the scale is silent past its limit.

A parcel scan that matches a return is never held for its weight. In the scan's own transaction
the recorder reads the station scale's `Latest` (a plain attribute read from the writer thread):
a stable reading with a parcel on the pan goes into the event and the receipt at once. Otherwise
the event is stored with `check: unknown` but not released to the publisher (its outbox row stays
unready, which holds the events behind it too, keeping their order); the scan service waits up to
`receiving.weight_settle_ms` from the scan for a stable loaded reading, rewrites the event and the
receipt's weight with it (or leaves `unknown`, saying why) and releases the row. A crash in
between leaves the stored `unknown` event, released at start-up like any unready row.

`weighing.py` is the pure part: the expected weight (the return's `weight_g`, else its items'),
the tolerance and the check, and the `weight` object of the contract. `service.py` is what the
rest of the agent sees: the station scale, the states for `status` and the page, the alert.
"""
