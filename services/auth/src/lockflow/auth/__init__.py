"""Authentication and roles. This version identifies the caller only; tokens and roles come next."""
