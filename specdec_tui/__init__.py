"""specdec-tui: watch speculative decoding step by step. The UI lives in `app`; `cli` and `headless` stay textual-free."""
