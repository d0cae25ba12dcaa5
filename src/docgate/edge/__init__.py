"""The gRPC edge: interceptors, handler wrapping, the service registry and reflection."""
