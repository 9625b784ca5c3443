"""``python -m examples_app``: synthesise the examples app (context ``stage``, default ``dev``)."""

from __future__ import annotations

from examples_app.app import build_app


def main() -> None:
    """Synthesise into ``cdk.out`` (or the directory the CDK CLI gives)."""
    build_app().synth()


if __name__ == "__main__":
    main()
