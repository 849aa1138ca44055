"""Exit codes of every entry point, defined once (deploy scripts and cron rely on them).

| code | meaning                                                                       |
|------|-------------------------------------------------------------------------------|
| 0    | done                                                                          |
| 1    | unexpected failure (traceback on stderr), or a compared model failed          |
| 2    | bad input: configuration, option or data (one `error:` line, nothing written) |
| 3    | forecast written (or unchanged) but some series were skipped                  |
| 4    | monitor: scores written, and an alarm rule broke for the model in service     |
| 75   | another run holds the output's lock (EX_TEMPFAIL: retry later)                |
"""

import sys
import traceback

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_BAD_INPUT = 2
EXIT_PARTIAL = 3
EXIT_ALARM = 4
EXIT_LOCKED = 75


def report_bad_input(error: Exception) -> int:
    """Prints bad input as one `error:` line on stderr (no traceback); returns `EXIT_BAD_INPUT`."""
    print(f"error: {error}", file=sys.stderr)
    return EXIT_BAD_INPUT


def report_locked(error: Exception) -> int:
    """Prints a held lock as one `error:` line on stderr; returns `EXIT_LOCKED`."""
    print(f"error: {error}", file=sys.stderr)
    return EXIT_LOCKED


def report_failure(error: BaseException) -> int:
    """Prints an unexpected failure with its traceback and one `error:` line; `EXIT_FAILED`."""
    traceback.print_exc()
    print(f"error: {type(error).__name__}: {error}", file=sys.stderr)
    return EXIT_FAILED
