"""What crosses from the engine to a user: frozen step results, per-position records (built from a step's tensors
in positions.py), text pieces, traces, the run summary, the speed-up theory and literal text. All but positions.py
import without torch, so a trace replays with no model."""
