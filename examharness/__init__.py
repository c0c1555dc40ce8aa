"""examharness: run human exams against language models and place them among human test-takers."""

__version__ = "0.1.0"

__all__ = ["__version__"]
