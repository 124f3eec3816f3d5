"""Unit tier: fast in-process tests (see conftest.py).

A package, so that its module names never clash with those of tests/.
"""
