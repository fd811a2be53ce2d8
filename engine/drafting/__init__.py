"""Drafting: the Drafter protocol and its chain helpers, the factory, the model, n-gram, lookup and head drafters,
token trees (shapes, drafting, the tree itself), the distributions drafts are drawn from, and the shipped heads."""
