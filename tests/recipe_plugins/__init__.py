"""Recipes defined only in the tests: proof that a recipe plugs into every stage with no change to doctune."""
