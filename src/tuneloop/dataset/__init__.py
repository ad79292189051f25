"""Dataset building: pure functions from collected posts to OpenAI chat fine-tuning JSONL."""
