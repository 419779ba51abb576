"""Identity, history signing, attestations and access policies.

A layer of its own so that the orchestrator (which signs and verifies history), the
workers (which attest results and enforce policies on activities) and the SDK (which
creates certificates and gates management calls) can all use it. It imports the standard
library, `cryptography` and `yaml` only (an import-linter contract holds this line); it
knows nothing of the database, the broker or the engine: it works on plain bytes and text.
"""
