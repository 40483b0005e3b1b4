"""Faust wiring for Stormvarsel: app, topics, agents, web views and the command line."""

__version__ = "0.1.0"
