"""Files that ship inside the wheel: the embedded schema.sql and the browser assets."""
