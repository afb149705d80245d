"""medimg: command-line pipelines for fingertip OCT, acne photos and mandible CT."""

__version__ = "0.1.0"
