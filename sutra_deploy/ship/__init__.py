"""Shipping: release names, pushes, what ran where, the deploy pipeline and rollbacks. It may
use every phase folder; nothing imports it but the edge."""
