"""The language model: loading or building it, its tokenizer and chat template, encoding documents,
LoRA fine-tuning, the LoRA layout, adapters as data, generation and its backends."""
