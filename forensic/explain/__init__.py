"""Explanations: Score-CAM (exact and fast), attention entropy, cosine similarity and stability."""
