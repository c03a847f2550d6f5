"""Kinema: open, self-hostable AI video generation."""

__version__ = "0.1.0"
