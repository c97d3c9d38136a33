"""Search: embeddings, the HNSW vector index, the BM25 keyword index, and their fusion."""
