"""The test stack as a CDK app: the test functions instrumented, the bucket, the combiner.

``python -m test_stack_cdk`` synthesises it into ``cdk.out``; ``make
test-deploy`` deploys it. Its outputs are what the load-test driver reads
(``python -m test_stack.loadtest --target aws --stack NAME``).
"""
