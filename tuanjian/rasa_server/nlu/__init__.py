"""Custom Rasa graph components for Chinese text."""
