"""The dock edge agent: scans, prints and syncs at a return-parcel dock."""

__version__ = "0.1.0"
