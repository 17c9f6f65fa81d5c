"""What every municipal app shares: the database layer (``db``)."""
