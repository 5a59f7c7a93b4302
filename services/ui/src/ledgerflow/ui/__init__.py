"""ledgerflow.ui: the web UI service. It reads everything through the API over HTTP
(and, in a later issue, live events from Kafka); it has no state of its own."""
