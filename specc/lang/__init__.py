"""The compiler's torch-free half: grammar loading, parse, nodes, imports, expand, infer, the registry, errors.

Nothing under specc/lang imports torch: this is all `specc check` runs.
"""
