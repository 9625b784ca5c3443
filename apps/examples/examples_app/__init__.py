"""The examples CDK app: one function per way of using Lambda Coverage.

``python -m examples_app`` synthesises it into ``cdk.out`` (no AWS account
needed); ``cdk deploy`` with ``apps/examples/cdk.json`` deploys it.
"""
