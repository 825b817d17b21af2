"""The landflow service's processes: how they are started, run and supervised."""
