"""Version of the lambda-coverage-constructs distribution."""

__version__ = "0.1.0"
