#!/usr/bin/env python3
"""asyncio_poller.py - an ipk_poller nested in a foreign event loop: Python's asyncio.

The poller waits on channels of any kind (shm: and sysv: included, which have no descriptor of
their own) and offers one descriptor for the whole set, ipk_poller_fd(). asyncio watches that
descriptor like any socket (loop.add_reader); when it is readable, the callback drains the poller
with ipk_poller_wait(..., timeout 0) until it says -EAGAIN, which re-arms it (ipckit.h, "The
poller"). The library is used through ctypes: no extension module, no thread.

Every message is printed as "[SOURCE] MESSAGE"; a connection listener (unix:, tcp:) has its
clients' messages echoed back. SIGTERM or SIGINT, taken by asyncio's own signal handling, closes
every channel (removing what this process created, unless messages still wait in it) and exits 0.

Run:  python3 asyncio_poller.py [--lib PATH/libipckit.so] URL...
      python3 examples/asyncio_poller.py --lib build/libipckit.so 'shm:/jobs?multi=1' mq:/jobs &
      ipckit send shm:/jobs hello; ipckit send mq:/jobs world; kill %1
"""
import argparse
import asyncio
import ctypes
import ctypes.util
import errno
import signal
import sys

IPK_EOF = -4095
IPK_ETIMEDOUT = -4094
IPK_EMSGSIZE = -4093
IPK_POLLIN = 0x1
IPK_SCHEME_ACCEPT = 0x04
IPK_SCHEME_SIGNAL = 0x20
PARK_S = 0.1  # a ring whose producers all closed is looked at this often (see park)
TIMED_S = 0.005  # System V queues are looked at this often (see Server.tick)
ECHO_MS = 1000  # a client that does not read its echo within this is dropped


class PollEv(ctypes.Structure):
    _fields_ = [("chan", ctypes.c_void_p), ("events", ctypes.c_uint), ("user", ctypes.c_void_p)]


def load(path):
    lib = ctypes.CDLL(path or ctypes.util.find_library("ipckit") or "libipckit.so.0")
    vp, chan_out = ctypes.c_void_p, ctypes.POINTER(ctypes.c_void_p)
    for name, res, args in [
        ("ipk_opts_new", vp, []),
        ("ipk_opts_set", ctypes.c_int, [vp, ctypes.c_char_p, ctypes.c_char_p]),
        ("ipk_opts_free", None, [vp]),
        ("ipk_listen", ctypes.c_int, [chan_out, ctypes.c_char_p, vp]),
        ("ipk_accept", ctypes.c_int, [vp, chan_out, ctypes.c_int]),
        ("ipk_recv", ctypes.c_long, [vp, vp, ctypes.c_size_t, ctypes.c_int]),
        ("ipk_send", ctypes.c_int, [vp, vp, ctypes.c_size_t, ctypes.c_int]),
        ("ipk_needed", ctypes.c_size_t, [vp]),
        ("ipk_undelivered", ctypes.c_long, [vp]),
        ("ipk_close", ctypes.c_int, [vp]),
        ("ipk_addr", ctypes.c_char_p, [vp]),
        ("ipk_scheme", ctypes.c_char_p, [vp]),
        ("ipk_scheme_flags", ctypes.c_uint, [ctypes.c_char_p]),
        ("ipk_strerror", ctypes.c_char_p, [ctypes.c_int]),
        ("ipk_errmsg", ctypes.c_char_p, []),
        ("ipk_poller_new", ctypes.c_int, [ctypes.POINTER(vp)]),
        ("ipk_poller_add", ctypes.c_int, [vp, vp, ctypes.c_uint, vp]),
        ("ipk_poller_del", ctypes.c_int, [vp, vp]),
        ("ipk_poller_wait", ctypes.c_int, [vp, ctypes.POINTER(PollEv), ctypes.c_int, ctypes.c_int]),
        ("ipk_poller_fd", ctypes.c_int, [vp]),
        ("ipk_poller_free", None, [vp]),
    ]:
        fn = getattr(lib, name)
        fn.restype, fn.argtypes = res, args
    return lib


class IpkError(Exception):
    pass


class Server:
    """The channels, keyed by the small integer each carries as its poller user pointer."""

    def __init__(self, lib, loop):
        self.lib, self.loop = lib, loop
        self.poller = ctypes.c_void_p()
        self.check(lib.ipk_poller_new(ctypes.byref(self.poller)), "poller")
        self.chans = {}  # key -> [chan, kind, name]
        self.next_key = 1
        self.clients = 0
        self.buf = ctypes.create_string_buffer(64 << 10)
        self.events = (PollEv * 32)()
        self.done = loop.create_future()
        self.timed = []  # System V queues: read on asyncio's own timer (see tick)

    def check(self, r, what):
        if r < 0:
            raise IpkError("%s: %s (%s)" % (what, self.lib.ipk_strerror(r).decode(),
                                            self.lib.ipk_errmsg().decode()))
        return r

    def add(self, chan, kind, name, polled=True):
        key = self.next_key
        self.next_key += 1
        self.chans[key] = [chan, kind, name]
        if polled:
            self.check(self.lib.ipk_poller_add(self.poller, chan, IPK_POLLIN, key), name)
        else:
            self.timed.append(key)

    def listen(self, url):
        # A server outlives its writers: a FIFO is opened with persist=1 (it holds a write end).
        opts = self.lib.ipk_opts_new()
        if url.startswith("fifo:"):
            self.check(self.lib.ipk_opts_set(opts, b"persist", b"1"), url)
        chan = ctypes.c_void_p()
        r = self.lib.ipk_listen(ctypes.byref(chan), url.encode(), opts)
        self.lib.ipk_opts_free(opts)
        self.check(r, url)
        scheme = self.lib.ipk_scheme(chan)
        if scheme == b"sysv" and not self.timed:
            self.loop.call_later(TIMED_S, self.tick)
        flags = self.lib.ipk_scheme_flags(scheme)
        kind = "listener" if flags & IPK_SCHEME_ACCEPT else "read"
        self.add(chan, kind, self.lib.ipk_addr(chan).decode(), polled=scheme != b"sysv")

    def drop(self, key):
        chan, _, name = self.chans.pop(key)
        waiting = self.lib.ipk_undelivered(chan)
        self.lib.ipk_close(chan)  # also leaves the poller
        if waiting > 0:
            print("asyncio_poller: %s: %d message(s) still wait: left in place" % (name, waiting),
                  file=sys.stderr)

    def park(self, key):
        """A shared-memory ring says end of stream once its producers have all closed, and a
        poller reports that as readable while it lasts: out of the poller for a while."""
        chan = self.chans[key][0]
        self.check(self.lib.ipk_poller_del(self.poller, chan), self.chans[key][2])
        self.loop.call_later(PARK_S, self.unpark, key)

    def unpark(self, key):
        if key in self.chans and not self.done.done():
            self.check(self.lib.ipk_poller_add(self.poller, self.chans[key][0], IPK_POLLIN, key),
                       self.chans[key][2])
            self.on_readable()  # the descriptor may not say so: ask once

    def tick(self):
        """A System V queue has no descriptor: a poller looks at it on a timer of its own, which
        while nested (every wait of timeout 0) either never runs or does not back off, so the
        poller's descriptor would say nothing or wake asyncio thousands of times a second. The
        queues stay out of the poller and asyncio reads them every 5 ms, the bound the poller
        documents for them."""
        if not self.done.done():
            try:
                for key in list(self.timed):
                    if key in self.chans:
                        self.serve(key)
            except IpkError as e:
                self.done.set_exception(e)
                return
            self.loop.call_later(TIMED_S, self.tick)

    def receive(self, chan):
        while True:
            n = self.lib.ipk_recv(chan, self.buf, len(self.buf), 0)
            if n != IPK_EMSGSIZE:
                return n
            self.buf = ctypes.create_string_buffer(max(self.lib.ipk_needed(chan), 2 * len(self.buf)))

    def serve(self, key):
        """What one ready channel holds now (up to 64 messages: no channel starves the rest)."""
        chan, kind, name = self.chans[key]
        for _ in range(64):
            if kind == "listener":
                peer = ctypes.c_void_p()
                r = self.lib.ipk_accept(chan, ctypes.byref(peer), 0)
                if r in (-errno.EAGAIN, -errno.ECONNABORTED):
                    return
                self.check(r, name)
                self.clients += 1
                self.add(peer, "client", "%s #%d" % (name, self.clients))
                continue
            n = self.receive(chan)
            if n == -errno.EAGAIN:
                return
            if n < 0 and kind == "client":
                self.drop(key)  # IPK_EOF: it left; anything else: it broke
                return
            if n == IPK_EOF:
                self.park(key)
                return
            self.check(n, name)
            msg = self.buf.raw[:n]
            print("[%s] %s" % (name, msg.decode(errors="replace")), flush=True)
            if kind == "client" and self.lib.ipk_send(chan, self.buf, n, ECHO_MS) != 0:
                self.drop(key)
                return

    def on_readable(self):
        """asyncio's reader callback: drain the poller until -EAGAIN, which re-arms it."""
        while not self.done.done():
            n = self.lib.ipk_poller_wait(self.poller, self.events, len(self.events), 0)
            if n == -errno.EAGAIN:
                return
            try:
                self.check(n, "wait")
                keys = [self.events[i].user for i in range(n)]
                for key in keys:
                    if key in self.chans:  # not dropped by an earlier event of this round
                        self.serve(key)
            except IpkError as e:
                self.done.set_exception(e)

    def close(self):
        for key in sorted(self.chans, key=lambda k: self.chans[k][1] != "client"):
            self.drop(key)
        self.lib.ipk_poller_free(self.poller)


async def main():
    ap = argparse.ArgumentParser(description="ipk_poller inside asyncio")
    ap.add_argument("--lib", help="path of libipckit.so (default: the system's)")
    ap.add_argument("urls", nargs="+")
    args = ap.parse_args()
    loop = asyncio.get_running_loop()
    srv = Server(load(args.lib), loop)
    try:
        for url in args.urls:
            srv.listen(url)
        fd = srv.lib.ipk_poller_fd(srv.poller)
        srv.check(fd, "poller fd")
        loop.add_reader(fd, srv.on_readable)
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, lambda s=sig: srv.done.done() or srv.done.set_result(s))
        print("asyncio_poller: ready, %d channels, the poller's fd %d in asyncio"
              % (len(args.urls), fd), file=sys.stderr, flush=True)
        sig = await srv.done
        loop.remove_reader(fd)
        print("asyncio_poller: signal %d: closing" % sig, file=sys.stderr)
    finally:
        srv.close()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except IpkError as e:
        print("asyncio_poller: %s" % e, file=sys.stderr)
        sys.exit(1)
