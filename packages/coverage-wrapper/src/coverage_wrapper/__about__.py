"""Version of the lambda-coverage-wrapper distribution."""

__version__ = "0.1.0"
