"""InsertAnywhere: insert an object into a video so that it looks filmed there."""

__version__ = "0.1.0"
