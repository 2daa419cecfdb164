"""Fake provider APIs and call traffic, for `callmon demo`, `callmon simulate` and the tests."""
