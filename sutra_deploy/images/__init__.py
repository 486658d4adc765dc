"""Phase 2: base images, builds and their cache, Dockerfiles for a checkout, image archives,
sizes, what makes an image big, and what it costs to move."""
