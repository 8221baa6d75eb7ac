"""One module per graph node: expand, route, retrieve, rerank, answer, verify."""
