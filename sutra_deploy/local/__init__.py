"""Phase 3: the stack under Docker Compose on this machine."""
