"""Pieces shared by the ingest and engine processes: settings, channels, the event envelope."""
