"""ledgerflow.ui: the web UI service. It reads everything through the API over HTTP,
live events included (the API's server-sent event stream, fed from Kafka); it has no
state of its own."""
