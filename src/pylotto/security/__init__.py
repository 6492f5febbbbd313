"""Security: API tokens, mTLS certificates, access control, rate limits."""
