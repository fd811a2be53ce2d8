"""Making the draft head for the embedded verifier (engine/drafting/heads/): data from the verifier itself (make_data), then
training (train_head), over the prompt sets (prompts, parts) and the trainable head (head_training), which reuses
the engine's forward maths and head format. Run as modules: `python -m training.make_data`, `python -m
training.train_head` (the Makefile's `train-head` does both). Not part of the installed package.
"""
