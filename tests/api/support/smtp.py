"""A real SMTP server for the tests (aiosmtpd), on a loopback port the test chose.

Every message it accepts is written to the directory given, one JSON file per message, with
its envelope, its headers, and its text and HTML parts decoded. While a file named `stall`
exists in that directory, the server holds every RCPT command (a sender is then mid-send).

    python3 smtp.py DIR PORT [starttls|smtps CERT KEY [USER PASSWORD]]

With `starttls` the server offers STARTTLS and requires it (and then sign-in, when a user is
given, only over TLS); with `smtps` it speaks TLS from the first byte.
"""

import asyncio
import email
import json
import os
import signal
import ssl
import sys
import time
from email import policy

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult

OUT, PORT = sys.argv[1], int(sys.argv[2])
MODE = sys.argv[3] if len(sys.argv) > 3 else "plain"
COUNT = 0


class Handler:
    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        while os.path.exists(os.path.join(OUT, "stall")):
            await asyncio.sleep(0.05)
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        global COUNT
        message = email.message_from_bytes(envelope.content, policy=policy.default)
        text = message.get_body(preferencelist=("plain",))
        html = message.get_body(preferencelist=("html",))
        document = {
            "from": envelope.mail_from,
            "to": envelope.rcpt_tos,
            "headers": {key: str(value) for key, value in message.items()},
            "text": text.get_content() if text is not None else None,
            "html": html.get_content() if html is not None else None,
        }
        COUNT += 1
        name = os.path.join(OUT, "%d-%06d.json" % (time.time_ns(), COUNT))
        with open(name + ".tmp", "w") as f:
            json.dump(document, f)
        os.rename(name + ".tmp", name)
        return "250 Message accepted"


def authenticator(server, session, envelope, mechanism, auth_data):
    ok = (auth_data.login.decode(), auth_data.password.decode()) == (sys.argv[6], sys.argv[7])
    return AuthResult(success=ok)


options = {}
if MODE in ("starttls", "smtps"):
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(sys.argv[4], sys.argv[5])
    if MODE == "starttls":
        options.update(tls_context=context, require_starttls=True)
    else:
        options.update(ssl_context=context)
    if len(sys.argv) > 7:
        options.update(authenticator=authenticator, auth_required=True,
                       auth_require_tls=MODE == "starttls")
controller = Controller(Handler(), hostname="127.0.0.1", port=PORT, **options)
controller.start()
print("ready", flush=True)
signal.sigwait({signal.SIGTERM, signal.SIGINT})
controller.stop()
