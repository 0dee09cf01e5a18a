"""Printing: label templates, renderers (ZPL, ESC/POS, PNG), the job service, printer health."""
