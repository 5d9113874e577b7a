"""Shared checks and the corpus of hostile values for the record-encoder tests."""
