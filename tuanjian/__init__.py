"""The 智慧团建 transfer assistant.

rasa_server/ holds the plugins the Rasa server loads, backend/ the transfer and
help-desk backend, tools/ the league office's command-line tools; the action
server is the top-level actions/ package.
"""
