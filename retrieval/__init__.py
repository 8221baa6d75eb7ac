"""Everything about documents and search; nothing about LLMs."""
