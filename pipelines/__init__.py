"""Data pipelines: source -> validate -> features -> split + scale -> windows -> ...

Importing this package has no side effects: no tracking URI is set, nothing is read or written.
"""
