"""``attnstep serve``: the stepping app for a whole class over SSH, from one model.

Processes and modules::

    server process                                     zygote process (never imports torch)
    ┌────────────────────────────────────────────┐     ┌──────────────────────────────┐
    │ server.py   the class; each session's      │────►│ zygote.py  the app imported  │
    │             bridge to its SSH channel      │fork │ once; forks a child per      │
    │ gate.py     asyncssh: logins, throttling   │     │ session, enforces its limits │
    │ auth.py     passwords, keys, host key      │     └──────────────┬───────────────┘
    │ spares.py   sessions started ahead         │                    │ fork
    │ pty.py      a session's pty: set-up, size, │     ┌──────────────▼───────────────┐
    │             the one output-read loop       │◄───►│ session.py  the Textual app  │  (the pty)
    │ backend.py  Unix socket ◄────────────────┐ │     │ remote.py   RemoteTraceSource│
    │ service.py  the model, one thread        │ │     │             + class channel  │
    │ hub.py      what the teacher shows       │ │     └──────────────┬───────────────┘
    └──────────────────────────────────────────┼─┘                    │
                                               └──────────────────────┘
    wire.py: the JSON-lines messages between the server and the sessions.
"""
