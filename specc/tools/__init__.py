"""What specc shows a user about a checked spec: summaries (and, later, drawings and formatting). Torch-free."""
