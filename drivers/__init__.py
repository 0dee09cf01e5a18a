"""Hardware drivers: scanners and printers. Imports nothing from `edge_agent`."""
