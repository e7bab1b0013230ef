"""What a JoeyNMT or OpenNMT-py RNN model is made of: the settings its loader reads from the toolkit's config.

Both toolkits build the same kind of model (Luong et al. 2015: the RNN steps first, then attends
with the new state, then an attentional layer and the output layer), and differ in the pieces:
the scorers they offer, how the decoder's first state is made from the encoder's final states, and
the attentional layer (JoeyNMT: tanh(W [h_t; C_t] + b); OpenNMT-py: W [C_t; h_t], with tanh and no
bias for dot and general, with a bias and no tanh for mlp).
"""

from __future__ import annotations

from dataclasses import dataclass

JOEYNMT, OPENNMT = "joeynmt", "opennmt-py"
CELLS = ("gru", "lstm")
SCORERS = {JOEYNMT: ("bahdanau", "luong"), OPENNMT: ("dot", "general", "mlp")}
INITS = {JOEYNMT: ("bridge", "last", "zero"), OPENNMT: ("final", "bridge")}


@dataclass(frozen=True)
class RecurrentConfig:
    toolkit: str  # JOEYNMT or OPENNMT: whose attentional layer and first decoder state
    src_vocab_size: int  # the source vocabulary, specials included
    tgt_vocab_size: int  # the target vocabulary, specials included
    src_emb: int  # source embedding size
    tgt_emb: int  # target embedding size
    cell: str  # "gru" or "lstm", in the encoder and the decoder alike
    enc_hidden: int  # per direction
    enc_layers: int  # stacked encoder layers
    bidirectional: bool  # the encoder reads both ways; its states h_i are then [h→_i; h←_i]
    dec_hidden: int  # the decoder state h_t of every decoder layer
    dec_layers: int  # stacked decoder layers; attention reads the top one
    attention: str  # joeynmt: bahdanau | luong; opennmt-py: dot | general | mlp
    init: str  # joeynmt: bridge | last | zero; opennmt-py: final (each layer's final states) | bridge
    input_feeding: bool  # h~_{t-1} is read with y_{t-1} (Luong 2015, section 3.3)
    scale_embeddings: bool = False  # JoeyNMT's `scale`: embeddings times √d
    output_bias: bool = False  # a bias on the output layer (OpenNMT-py's generator has one)
    src_pad: int = 1  # both toolkits: <unk> 0, <pad> 1, <s> 2, </s> 3
    tgt_pad: int = 1

    def __post_init__(self) -> None:
        if self.toolkit not in SCORERS:
            raise ValueError(f"unknown toolkit {self.toolkit!r}")
        if self.cell not in CELLS:
            raise ValueError(f"the RNN must be a GRU or an LSTM, not {self.cell!r}")
        if self.attention not in SCORERS[self.toolkit]:
            raise ValueError(f"{self.toolkit} has no {self.attention!r} attention")
        if self.init not in INITS[self.toolkit]:
            raise ValueError(f"{self.toolkit} has no {self.init!r} initial decoder state")
        for name in ("src_vocab_size", "tgt_vocab_size", "src_emb", "tgt_emb", "enc_hidden", "enc_layers"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be positive, not {getattr(self, name)}")
        if self.dec_hidden < 1 or self.dec_layers < 1:
            raise ValueError("the decoder needs a positive size and number of layers")
        if self.toolkit == OPENNMT and (self.memory_dim, self.enc_layers) != (self.dec_hidden, self.dec_layers):
            raise ValueError("OpenNMT-py's encoder and decoder have one size and one number of layers")
        if (
            self.toolkit == JOEYNMT
            and self.init == "last"
            and self.memory_dim not in (self.dec_hidden, 2 * self.dec_hidden)
        ):
            raise ValueError("init_hidden 'last' needs the encoder's final state to be the decoder's size")

    @property
    def memory_dim(self) -> int:
        """Size of one encoder state h_i (both directions)."""
        return self.enc_hidden * (2 if self.bidirectional else 1)

    @property
    def out_dim(self) -> int:
        """Size of the attentional vector h~_t: the decoder's size in both toolkits."""
        return self.dec_hidden
