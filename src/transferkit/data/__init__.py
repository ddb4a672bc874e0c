"""Loading and checking labelled examples. Imports no model code."""

from transferkit.data.examples import ExampleSet, load_examples

__all__ = ["ExampleSet", "load_examples"]
