"""Models and what surrounds them: loading (hub ids, local folders, the embedded GGUF) and its cache, the lean
Llama module and tokenizer, chat prompting, thread choice, the tokenizer check, and a served model (vLLM export and
its HTTP client). Nothing here decodes."""
