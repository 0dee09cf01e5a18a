"""Scales (contract cli.md `scales:`; facts and sources in ../shared/reference/scales.md).

Theory of operation. One protocol a file, each a pure parser (bytes in, `Reading`s out, no I/O,
no clock): `sics.py` (Mettler Toledo MT-SICS), `toledo8217.py` (the scanner-scale "weight only"
protocol), `continuous.py` (indicators that send a line every display update), `hidpos.py` (USB
HID POS scale data reports, usage page 0x8D). Every parser takes bytes as they arrive, whole or
one at a time, and keeps what follows a complete reply for the next. Weights are reported in
grams whatever unit the scale uses. A reading is stable by the scale's own flag where the
protocol has one; `stability.Stabilizer` decides it from N equal readings in a row where not.
"""
