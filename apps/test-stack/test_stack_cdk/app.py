"""The test-stack app: the stack, and cdk-nag's AwsSolutions checks over it."""

from __future__ import annotations

import aws_cdk as cdk
from cdk_nag import AwsSolutionsChecks

from test_stack_cdk.stack import TestStack

#: The default stack name (``make test-deploy STACK=...`` chooses another).
STACK_NAME = "LambdaCoverageTestStack"


def build_app(app: cdk.App | None = None) -> cdk.App:
    """An app with the test stack (context ``stack_name``), checked by cdk-nag at synthesis."""
    app = app or cdk.App()
    TestStack(app, str(app.node.try_get_context("stack_name") or STACK_NAME))
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    return app
