"""Serve the suspend test's deployment: ``python -m tests.adapters.prefect.serve_flows``."""

from __future__ import annotations

import sys

from tests.adapters.prefect.flows import refund_suspend

if __name__ == "__main__":
    refund_suspend.serve(name=sys.argv[1] if len(sys.argv) > 1 else "suspend-test")
