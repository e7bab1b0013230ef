"""``attnstep serve``: the stepping app for a whole class over SSH, from one model.

Processes and modules::

    server process                                   zygote process (never imports torch)
    ┌──────────────────────────────────────────┐     ┌──────────────────────────────┐
    │ server.py   asyncssh: logins, pty bridge │────►│ zygote.py  the app imported  │
    │ auth.py     passwords, keys, host key    │fork │ once; forks a child per      │
    │ backend.py  Unix socket ◄──────────────┐ │     │ session, enforces its limits │
    │ service.py  the model, one thread      │ │     └──────────────┬───────────────┘
    │ hub.py      what the teacher shows     │ │                    │ fork
    └────────────────────────────────────────┼─┘     ┌──────────────▼───────────────┐
                 pty ◄───────────────────────┼──────►│ session.py  the Textual app  │
                                             └───────┤ remote.py   RemoteTraceSource│
                                                     │             + class channel  │
                                                     └──────────────────────────────┘
    wire.py: the JSON-lines messages between the server and the sessions.
"""
