"""rasa-sdk actions, one module per area."""
