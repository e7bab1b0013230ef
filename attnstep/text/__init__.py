"""Text to token ids and back: attnstep's word tokenizer, vocabularies, SentencePiece models and the codecs over them."""
