"""Data stage: source -> validate -> features -> split + scale -> windows.

It imports no later stage (import-linter checks it in `make lint`).
"""
