"""Mandible segmentation from head CT (seed 002). Not implemented yet: see issue 5."""
