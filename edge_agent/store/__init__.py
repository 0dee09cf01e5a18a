"""SQLite storage: the scan/event database (agent.db) and the manifest database (manifest.db).

They are two files so that applying a manifest snapshot (a long write) never holds the lock
that scans need: each file has one writer thread, and readers never block writers (WAL).
"""
