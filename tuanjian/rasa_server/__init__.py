"""Plugins the Rasa server loads (config.yml, endpoints.yml, credentials.yml).

channels/: where a message enters; nlu/: where it is understood; policies/:
where the next step is chosen beside Rasa's own; tracker_store.py: where the
conversation is kept.
"""
