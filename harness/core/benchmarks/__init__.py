"""Tables of known architecture accuracies (NAS-Bench-201), used for evaluation by look-up and for
architecture-level ranking correlation."""
