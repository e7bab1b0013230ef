"""RNN attention models trained with JoeyNMT or OpenNMT-py, computed as each toolkit computes them."""
