"""The same trivial gRPC ModelInfer handler on each candidate server stack, side by side."""
