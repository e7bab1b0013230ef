"""attnstep's own RNN family: a bi-GRU encoder, Luong/Bahdanau attention scorers and a one-step GRU decoder."""
