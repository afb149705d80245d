"""Acne grading from skin photos (seed 001). Not implemented yet: see issue 4."""
