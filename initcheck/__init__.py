"""initcheck: verify that a weight initializer draws from the law it documents."""

__version__ = "0.1.0"
