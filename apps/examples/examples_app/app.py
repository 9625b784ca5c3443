"""The examples app: the stack, and cdk-nag's AwsSolutions checks over it."""

from __future__ import annotations

import aws_cdk as cdk
from cdk_nag import AwsSolutionsChecks

from examples_app.stack import ExamplesStack

STACK_NAME = "LambdaCoverageExamples"


def build_app(app: cdk.App | None = None) -> cdk.App:
    """An app with the examples stack, checked by cdk-nag at synthesis."""
    app = app or cdk.App()
    stage = str(app.node.try_get_context("stage") or "dev")
    ExamplesStack(app, STACK_NAME, stage=stage)
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    return app
