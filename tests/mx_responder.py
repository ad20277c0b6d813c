# mx_responder.py IP NAME DIR REFUSED... - an SMTP exchanger on IP:25 for
# the end-to-end tests: RCPT 550 5.1.1 for each REFUSED address (compared
# without case; ADDRESS=REPLY gives that address that reply instead),
# 250 for any other; each message kept in DIR the way
# smtp-sink keeps it (X-Mail-Args and X-Rcpt-Args lines, then the
# message); every command it is given logged on stderr, one a line.
import itertools
import os
import socketserver
import sys

IP, NAME, DIR = sys.argv[1], sys.argv[2], sys.argv[3]
REFUSED = {}
for a in sys.argv[4:]:
    addr, _, reply = a.partition("=")
    REFUSED[addr.lower()] = reply
seq = itertools.count()


class H(socketserver.StreamRequestHandler):
    def say(self, s):
        self.wfile.write((s + "\r\n").encode())
        self.wfile.flush()

    def handle(self):
        self.say("220 %s ESMTP" % NAME)
        frm, rcpts = None, []
        while True:
            line = self.rfile.readline()
            if not line:
                return
            cmd = line.decode(errors="replace").rstrip("\r\n")
            print("cmd: %s" % cmd, file=sys.stderr, flush=True)
            verb = cmd[:4].upper()
            if verb in ("EHLO", "HELO"):
                self.say("250 %s" % NAME)
            elif verb == "MAIL":
                frm, rcpts = cmd[10:].strip(), []
                self.say("250 2.1.0 Ok")
            elif verb == "RCPT":
                arg = cmd[8:].strip()
                addr = arg.split()[0] if arg.split() else arg
                key = addr.strip("<>").lower()
                if key in REFUSED:
                    self.say(REFUSED[key] or "550 5.1.1 %s: no such user" % addr)
                else:
                    rcpts.append(arg)
                    self.say("250 2.1.5 Ok")
            elif verb == "DATA":
                if not rcpts:
                    self.say("554 5.5.1 no valid recipients")
                    continue
                self.say("354 go ahead")
                body = []
                while True:
                    l = self.rfile.readline()
                    if not l or l.rstrip(b"\r\n") == b".":
                        break
                    body.append(l.decode(errors="replace").rstrip("\r\n"))
                name = os.path.join(DIR, "%d.%d" % (os.getpid(), next(seq)))
                with open(name + ".tmp", "w") as f:
                    f.write("X-Mail-Args: %s\n" % frm)
                    for r in rcpts:
                        f.write("X-Rcpt-Args: %s\n" % r)
                    f.write("\n".join(body) + "\n")
                os.rename(name + ".tmp", name)
                self.say("250 2.0.0 Ok: queued")
            elif verb == "RSET":
                frm, rcpts = None, []
                self.say("250 2.0.0 Ok")
            elif verb == "QUIT":
                self.say("221 2.0.0 Bye")
                return
            else:
                self.say("250 2.0.0 Ok")


class S(socketserver.ThreadingMixIn, socketserver.TCPServer):
    allow_reuse_address = True
    daemon_threads = True


S((IP, 25), H).serve_forever()
