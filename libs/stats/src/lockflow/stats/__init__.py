"""Small statistics shared by stages: effect sizes on one scale, p-values adjusted for many tests.

Pure functions of numbers (no pandas), so the insights and the recommendations rank and weigh
evidence the same way without one importing the other.
"""
