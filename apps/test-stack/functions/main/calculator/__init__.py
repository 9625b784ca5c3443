"""The main test function: a calculator whose operations each take real branches.

Deployed with the handler ``calculator.app.handler`` and this folder as the
task root, by the local runtime and by the CDK test stack alike.
"""
