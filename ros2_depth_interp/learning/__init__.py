"""Training and export (PyTorch): the network, losses, data, semi-dense masks, synthetic scenes."""
