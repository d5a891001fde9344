"""skypi: a private Python package index, serverless on AWS and the same code on one machine."""

__version__ = "0.1.0"
