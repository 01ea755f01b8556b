"""The terminal chat (``modelway chat``): backends, the REPL and how replies look.

``ChatBackend`` is what the REPL talks to: ``LocalBackend`` runs the engine and store
in-process, ``RemoteBackend`` a running gateway over HTTP. The web chat's API shares
``backend.chat_request`` and ``backend.reply_events`` so both faces save replies alike.
"""
