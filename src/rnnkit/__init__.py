"""rnnkit: recurrent sequence models on PyTorch."""
