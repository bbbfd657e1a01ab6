"""A module that fails while being imported."""

raise RuntimeError("import-time failure from import_error.py")

app = None  # never reached
