"""Version of the lambda-coverage-combiner distribution."""

__version__ = "0.1.0"
