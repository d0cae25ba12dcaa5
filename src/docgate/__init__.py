"""docgate: role-aware document store served over gRPC."""
