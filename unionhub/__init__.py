"""unionhub: a self-hostable hub for international union dialogue."""

__version__ = "0.1.0"
