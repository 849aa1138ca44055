"""Entry points, one module each: parse options -> run -> log -> exit code."""
