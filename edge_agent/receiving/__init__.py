"""Receiving: the station checks what a returned parcel really holds, item by item (mqtt.md,
"Receipts").

Theory of operation. A parcel scan whose return is `expected`, in a mode of `receiving.open_in`,
opens a receipt when the return has items; the worker then scans each item out of the box. The
decisions are a pure state machine (`machine.py`: open, count, set quantity or grade, close),
run inside the scan's own SQLite transaction by the scan recorder (`store/scans.py`, with the
receipt's rows in `store/receipts.py`), so the scan event, the receipt's counts and a closed
receipt's event commit together and a crash can never split them. Closing (CMD:DONE, the next
return, a mode change, CMD:CANCEL) queues one `event/receipt` in the outbox behind the scan that
closed it. The thin service around it (`service.py`) closes a receipt left idle for
`receiving.idle_close_s`, shows each change on the station page and prints on close where the
station asks for it; it never holds up a scan.
"""
