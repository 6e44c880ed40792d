"""File formats: video streams, PNG sequences, JSON containers, object assets."""
