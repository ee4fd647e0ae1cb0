"""Training, evaluation and prediction: the loop, data, recipes, checkpoints and plots.

This package's __init__ stays torch-free, because `specc check --recipe` uses
recipe.py; loop.py, checkpoint.py and evaluate.py import torch.
"""
