"""docgate load benchmark: the service against its own raw baseline, in one run (`make bench`)."""
