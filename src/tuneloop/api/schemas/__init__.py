"""Request and response models of the HTTP API, with examples for the OpenAPI docs."""
