"""``python -m harness``: SIGTERM is handled from the first line, before the imports (seconds: torch, Ray), the
argument parsing and Ray's start."""

from harness.interrupts import handle_sigterm, interrupted

handle_sigterm()
try:
    from harness.cli import main
except KeyboardInterrupt:
    raise SystemExit(interrupted()) from None

raise SystemExit(main())
