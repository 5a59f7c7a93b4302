"""ledgerflow.common: what the services share (event schema, pure core, adapters)."""
