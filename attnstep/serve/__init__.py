"""``attnstep serve``: the stepping app for a whole class over SSH, from one model.

Processes and modules::

    server process                                   one process per SSH session
    ┌──────────────────────────────────────────┐     ┌──────────────────────────────┐
    │ server.py   asyncssh: logins, pty bridge │ pty │ session.py  the Textual app  │
    │ auth.py     passwords, keys, host key    │◄───►│ (never imports torch)        │
    │ backend.py  Unix socket ◄────────────────┼─────┤ remote.py   RemoteTraceSource│
    │ service.py  the model, one thread        │     │             + class channel  │
    │ hub.py      what the teacher shows       │     └──────────────────────────────┘
    └──────────────────────────────────────────┘
    wire.py: the JSON-lines messages between them.
"""
