"""Choosing the next block: the auto plan (chain length or tree shape from measured verify costs and acceptance)
and the heuristic block-size schedule."""
