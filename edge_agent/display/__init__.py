"""The station display: the last scan's result, big, for the worker at the dock (see server.py)."""
