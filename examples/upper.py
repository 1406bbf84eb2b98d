#!/usr/bin/env python3
"""upper.py - a request handler for `ipckit serve --exec`, one line per message.

Every worker of the server runs this program once and keeps it running: each request arrives
as one line on standard input, and the one line written back is the reply. Flush after each
line, or the reply waits in Python's buffer and the client waits with it.

    ipckit serve -w 2 --exec 'python3 examples/upper.py' 'tcp://127.0.0.1:7000?framing=line'
    printf 'hello\\n' | nc -q1 127.0.0.1 7000        # -> HELLO
"""
import sys

for line in sys.stdin:
    sys.stdout.write(line.rstrip("\n").upper() + "\n")
    sys.stdout.flush()
