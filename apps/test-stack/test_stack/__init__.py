"""The test stack: functions, a local Lambda runtime to run them, and a load-test driver.

Nothing here is published. The local runtime (:mod:`test_stack.pool`) runs a
function's code under the real Python runtime client ``awslambdaric``
against a local implementation of Lambda's Runtime and Extensions APIs, so
the lifecycle the coverage wrapper lives in (one init, warm invokes, a frozen
process between invokes, concurrency, shutdown) is the real one.
"""
