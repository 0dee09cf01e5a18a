"""Printer drivers (ZPL and ESC/POS over TCP, serial, character device, file)."""
