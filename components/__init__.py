"""inference: turn a short models.yaml into an LLM-serving platform on Kubernetes."""
