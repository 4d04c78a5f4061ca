#!/usr/bin/env python3
"""tests/cluster/nsq.py: ask several plorad /status servers, each inside its
own network namespace, one question; used by netns.sh.

usage: nsq.py EXPR NS=HTTP [NS=HTTP ...]

For each NS=HTTP (a namespace under /run/netns and the daemon's http
address inside it, e.g. 127.0.0.1:40123) the process enters the namespace
with setns(2) (needs root), fetches http://HTTP/status and evaluates the
Python expression EXPR over s (the /status dict); helper ad(s, id) is that
adapter's entry or {}. Prints "NS: value" per namespace. Exit 0 iff EXPR is
true for every namespace, 1 if false for some, 2 if a /status is unreachable.
One process for all hosts: a poll of six daemons costs one interpreter start.
"""
import ctypes
import json
import os
import sys
import urllib.request

CLONE_NEWNET = 0x40000000
libc = ctypes.CDLL(None, use_errno=True)


def enter(ns):
    fd = os.open("/run/netns/" + ns, os.O_RDONLY)
    try:
        if libc.setns(fd, CLONE_NEWNET) != 0:
            e = ctypes.get_errno()
            raise OSError(e, "setns %s: %s" % (ns, os.strerror(e)))
    finally:
        os.close(fd)


def ad(s, i):
    return next((a for a in s.get("adapters", []) if a.get("id") == i), {})


def main():
    if len(sys.argv) < 3:
        print(__doc__.strip().splitlines()[2])
        return 2
    expr, rc = sys.argv[1], 0
    # Back to the namespace we started in after each host, so every
    # setns() above starts from the same place.
    home = os.open("/proc/self/ns/net", os.O_RDONLY)
    for arg in sys.argv[2:]:
        ns, http = arg.split("=", 1)
        try:
            enter(ns)
            with urllib.request.urlopen("http://%s/status" % http, timeout=3) as r:
                s = json.loads(r.read().decode())
            v = eval(expr)
            print("%s: %s" % (ns, v))
            if not v and rc == 0:
                rc = 1
        except Exception as e:  # any failure is "unreachable": report and go on
            print("%s: status unreachable: %s" % (ns, e))
            rc = 2
        finally:
            libc.setns(home, CLONE_NEWNET)
    return rc


sys.exit(main())
