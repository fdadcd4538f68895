"""Benchmarks behind ``qmask bench``: they print figures; nothing here asserts a time."""
