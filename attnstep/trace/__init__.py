"""The trace: immutable records of one decoding, their JSON form, the cursors over them and the alignments read off them (torch-free)."""
