"""The torch half: an analysed Network becomes an nn.Module (build, modules) and takes weights (weights).

Importing anything here imports torch.
"""
