"""Verification: the accept rules (greedy and rejection sampling) over chains and trees, and plain decoding, the
baseline every speculative run is checked against."""
