"""Forward passes: decoding streams over a KV cache, the lean Llama forward, matmul layout planning, pass timing,
the bf16 exactness probe and the watch on other processes' CPU load."""
