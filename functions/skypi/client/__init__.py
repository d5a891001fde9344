"""Talking to a running index from the command line: ``skypi publish``."""
