"""The two pages of ``attnstep serve --web``: the login form, and the app's page around textual.js.

Everything they load is the server's own (``/static/``: textual-serve's textual.js, xterm.css and
Roboto Mono); textual-serve's template also links a Google Fonts stylesheet, which a closed
network cannot reach, and these use the bundled font files through ``@font-face`` instead.
"""

from __future__ import annotations

from html import escape

_STYLE = """
@font-face { font-family: "Roboto Mono"; font-style: normal;
  src: url("/static/fonts/RobotoMono-VariableFont_wght.ttf") format("truetype"); }
@font-face { font-family: "Roboto Mono"; font-style: italic;
  src: url("/static/fonts/RobotoMono-Italic-VariableFont_wght.ttf") format("truetype"); }
html, body { margin: 0; height: 100%; background: #0c181f; color: rgba(255, 255, 255, 0.95);
  font-family: "Roboto Mono", monospace; }
"""

_LOGIN = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>attnstep: log in</title>
<style>{style}
main {{ max-width: 26rem; margin: 12vh auto; padding: 2rem; background: #12232d; }}
h1 {{ font-size: 1.3rem; margin: 0 0 1.2rem; }}
label {{ display: block; margin: 0.8rem 0 0.3rem; }}
input {{ width: 100%; box-sizing: border-box; padding: 0.5rem; font: inherit; }}
button {{ margin-top: 1.4rem; padding: 0.6rem 1.6rem; font: inherit; border: none;
  background: #5e0ba7; color: inherit; cursor: pointer; }}
.error {{ color: #ff8a80; }}
.hint {{ font-size: 0.85rem; opacity: 0.8; }}
</style>
</head>
<body>
<main>
<h1>attnstep: the class's stepping debugger</h1>
{error}
<form method="post" action="/login">
<label for="user">User name</label>
<input id="user" name="user" autocomplete="username" autocapitalize="none" spellcheck="false" required autofocus>
<label for="password">Password</label>
<input id="password" name="password" type="password" autocomplete="current-password">
{hint}
<button type="submit">Log in</button>
</form>
</main>
</body>
</html>
"""

_APP = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>attnstep</title>
<link rel="stylesheet" href="/static/css/xterm.css">
<script src="/static/js/textual.js"></script>
<style>{style}
#terminal {{ position: absolute; inset: 0; opacity: 0; transition: opacity 0.3s ease-out; }}
body.-first-byte #terminal {{ opacity: 1; }}
.waiting, .ended {{ position: absolute; top: 40vh; width: 100%; text-align: center; }}
body.-first-byte .waiting {{ display: none; }}
.ended {{ display: none; top: 0; padding: 0.6rem 0; background: #12232d; z-index: 10; }}
body.-closed .ended {{ display: block; }}
.ended a {{ color: #ac5af4; }}
</style>
</head>
<body>
<div class="waiting">starting your session…</div>
<div class="ended">The session has ended. <a href="/">Log in again</a></div>
<div id="terminal" class="textual-terminal" data-font-size="16"></div>
<script nonce="{nonce}">
// Same host and port as the page, wss: under HTTPS; textual.js reads this when the page has loaded.
document.getElementById("terminal").dataset.sessionWebsocketUrl =
  (location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/ws";
</script>
</body>
</html>
"""


def login_page(*, anonymous: bool, error: str = "") -> str:
    """The login form; ``anonymous``: a student may leave the password empty (a teacher may not)."""
    hint = '<p class="hint">Students may leave the password empty; a teacher needs theirs.</p>' if anonymous else ""
    return _LOGIN.format(
        style=_STYLE, error=f'<p class="error" role="alert">{escape(error)}</p>' if error else "", hint=hint
    )


def app_page(nonce: str) -> str:
    """The app's page: textual.js connects to this server's /ws with the login's cookie."""
    return _APP.format(style=_STYLE, nonce=escape(nonce))
