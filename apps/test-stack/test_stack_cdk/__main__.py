"""``python -m test_stack_cdk``: synthesise the test-stack app."""

from __future__ import annotations

from test_stack_cdk.app import build_app


def main() -> None:
    """Synthesise into ``cdk.out`` (or the directory the CDK CLI gives)."""
    build_app().synth()


if __name__ == "__main__":
    main()
