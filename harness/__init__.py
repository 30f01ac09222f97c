"""NAS comparison harness: methods × spaces × datasets × seeds as Ray Tune trials."""

__version__ = "0.1.0"
