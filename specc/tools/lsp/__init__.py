"""`specc lsp`: the language server. server.py speaks the protocol over stdio (pygls), analysis.py
runs `specc check`'s phases keeping what they got up to an error, features.py answers hints,
hovers, completion and navigation, modules.py writes the PyTorch module a layer builds. Torch-free."""
